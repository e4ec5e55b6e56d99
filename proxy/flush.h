/*
 * Writing without a detour through the event loop.  A bufferevent normally sends by
 * arming EPOLLOUT, waking up and disarming it again: two epoll_ctl calls and a
 * wakeup per message.  Client and server bufferevents here keep EV_WRITE disabled
 * while their output is empty; whoever adds output calls io_flush, which writes at
 * once and arms EV_WRITE only for what the socket did not take (the write callback
 * disarms it again when drained).
 */
#ifndef CORRAL_PROXY_FLUSH_H
#define CORRAL_PROXY_FLUSH_H

#include <event2/bufferevent.h>

/* Sends what bev's output holds now, as far as the socket takes it. */
void io_flush(struct bufferevent *bev);
/* In a write callback: the output has drained, stop watching for writability. */
void io_drained(struct bufferevent *bev);

#endif
