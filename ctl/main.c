/* main.c - secmsgctl, the administrator's tool (ctl.h, secmsgctl(8)). */
#include "ctl.h"

int main(int argc, char **argv)
{
	return ctl_main(argc, argv);
}
