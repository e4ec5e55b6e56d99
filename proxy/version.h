/* corral's version: `corral -V`, the admin console's server_version and SHOW VERSION. */
#ifndef CORRAL_PROXY_VERSION_H
#define CORRAL_PROXY_VERSION_H

#define CORRAL_VERSION "0.1.0"

#endif
