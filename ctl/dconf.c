/* dconf.c - secmsgd's own configuration table, built into secmsgctl.
 *
 * secmsgctl reads secmsgd.conf with the daemon's table and rules (as
 * bgpctl builds bgpd's parser), so the two cannot read one file two ways.
 * The Makefile builds every ctl/ source into secmsgctl; this file brings
 * daemon/config.c along. (With CTL_SRC += daemon/config.c in the Makefile
 * it can go.)
 */
#include "daemon/config.c"
