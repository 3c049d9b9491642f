/*
 * cmd_version.c — `strata version`: the version of the linked library,
 * taken from strata_version() rather than the tool's own build so a tool
 * linked against another library build reports what it really runs.
 */
#include <stdio.h>

#include "cli.h"
#include "strata/strata.h"

int cmd_version(int argc, char **argv)
{
	(void)argv;
	if (argc > 1)
		return cli_usage_error(cli_find("version"), "takes no arguments");
	printf("strata %s\n", strata_version());
	return CLI_OK;
}
