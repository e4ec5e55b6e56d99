/*
 * The dashboard page served at / (proxy/dashboard.html), built into the binary:
 * dashboard_html_end - dashboard_html bytes (a NUL follows them).
 */
#ifndef CORRAL_PROXY_DASHBOARD_HTML_H
#define CORRAL_PROXY_DASHBOARD_HTML_H

extern const char dashboard_html[];
extern const char dashboard_html_end[];

#endif
