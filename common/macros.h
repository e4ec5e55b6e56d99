/* Compiler helpers shared by every corral program. */
#ifndef CORRAL_COMMON_MACROS_H
#define CORRAL_COMMON_MACROS_H

#include <stddef.h>

#define WARN_UNUSED __attribute__((warn_unused_result))
#define PRINTF_LIKE(fmt, args) __attribute__((format(printf, fmt, args)))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
/* clang-format 14 takes "(ptr) -" for a cast and would write "(ptr)-offsetof". */
/* clang-format off */
#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
/* clang-format on */

#endif
