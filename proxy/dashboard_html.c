/*
 * proxy/dashboard.html assembled into .rodata as it is (.incbin), so the page is one
 * ordinary HTML file to edit, no generator runs, and nothing is read at run time.  The
 * path is relative to the directory the compiler runs in (the repository root, as make
 * runs it); the Makefile names the .html as a prerequisite of this object.
 */
#include "proxy/dashboard_html.h"

__asm__(".pushsection .rodata\n"
	".global dashboard_html\n"
	".type dashboard_html, @object\n"
	"dashboard_html:\n"
	".incbin \"proxy/dashboard.html\"\n"
	".global dashboard_html_end\n"
	"dashboard_html_end:\n"
	".byte 0\n"
	".popsection\n");
