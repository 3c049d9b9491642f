/*
 * error.c — status codes to messages, and the version string. Our codes sit
 * in [-10999, -10000]; anything else negative is read as -errno.
 */
#include <string.h>

#include "internal.h"
#include "strata/version.h"

static const char *const messages[] = {
	[-(STRATA_EINVAL + 10000)] = "invalid argument",
	[-(STRATA_ESTALE + 10000)] = "stale NodeID: the handle was freed or reused, or never issued",
	[-(STRATA_ENOTVISIBLE + 10000)] = "node not visible at this snapshot or transaction",
	[-(STRATA_ENOMEM + 10000)] = "out of memory; nothing was changed",
	[-(STRATA_EBUSY + 10000)] = "busy: a root is held by another transaction, a node is being changed by one, or handles are still open",
	[-(STRATA_ENOTLOCKED + 10000)] = "root was not named when the transaction began",
	[-(STRATA_ETOOBIG + 10000)] = "node larger than STRATA_NODE_MAX",
	[-(STRATA_EFULL + 10000)] = "table full: too many open snapshots, or NodeID space exhausted",
	[-(STRATA_ENOTFOUND + 10000)] = "not found: no such root at this epoch, or no such key or entry",
	[-(STRATA_ENOTSUP + 10000)] = "operation or mode not available in this build",
	[-(STRATA_ECORRUPT + 10000)] = "corruption detected: checksum or structure mismatch",
	[-(STRATA_EIO + 10000)] = "I/O error: the store refuses further writes",
	[-(STRATA_ENOSPC + 10000)] = "no space left on storage; the failed operation left no trace",
	[-(STRATA_EFORMAT + 10000)] = "not a Strata store, or written by a newer format version",
	[-(STRATA_ETRUNCATED + 10000)] = "file truncated: shorter than its header says",
	[-(STRATA_ESNAPSHOT_TOO_OLD + 10000)] = "snapshot too old: it exceeded its age or retention cap",
	[-(STRATA_EREADONLY + 10000)] = "node is not writable in this transaction",
	[-(STRATA_ENAME + 10000)] = "root name empty or longer than STRATA_ROOT_NAME_MAX",
	[-(STRATA_EEXIST + 10000)] = "key already present and overwrite was refused",
	[-(STRATA_EKEYSIZE + 10000)] = "key size out of range for this index",
	[-(STRATA_EWRONGINDEX + 10000)] = "root does not hold an index of this kind",
	[-(STRATA_ECOORD + 10000)] = "bad coordinate: NaN or infinite, or min greater than max",
	[-(STRATA_EDIMS + 10000)] = "dimension count out of range or not the tree's",
};

const char *strata_strerror(int status)
{
	if (status == 0)
		return "success";
	if (status <= -10000 && status > -11000) {
		unsigned i = (unsigned)(-(status + 10000));
		if (i < sizeof messages / sizeof messages[0] && messages[i])
			return messages[i];
		return "unknown strata status";
	}
	if (status < 0 && status > -4096)
		return strerror(-status);
	return "unknown status";
}

const char *strata_version(void)
{
	return STRATA_VERSION_STRING;
}
