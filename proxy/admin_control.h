/* The console's control commands (proxy/admin_control.c), for the command table. */
#ifndef CORRAL_PROXY_ADMIN_CONTROL_H
#define CORRAL_PROXY_ADMIN_CONTROL_H

#include "proxy/admin_cmd.h"

enum admin_result admin_cmd_reload(struct admin_ctx *ctx);
enum admin_result admin_cmd_set(struct admin_ctx *ctx);
enum admin_result admin_cmd_pause(struct admin_ctx *ctx);
enum admin_result admin_cmd_resume(struct admin_ctx *ctx);
enum admin_result admin_cmd_kill(struct admin_ctx *ctx);
enum admin_result admin_cmd_shutdown(struct admin_ctx *ctx);
enum admin_result admin_cmd_shutdown_wait(struct admin_ctx *ctx);

#endif
