/*
 * cmd_info.c — `strata info DIR`: what a store directory holds, read from
 * disk without opening the store: the superblock (both slots, the current
 * one decoded), then the WAL, checkpoint and data files present.
 *
 * Also owns cli_read_super(), the superblock loading and its error
 * messages, which `strata wal` shares. Everything is opened read-only
 * through io_env_posix(); nothing is ever written.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "io.h"
#include "strata/strata.h"
#include "superblock.h"
#include "wal_format.h"

#define KEY_WIDTH 18

/* dir + "/" + name into buf; false (and a message) if it does not fit. */
bool cli_path(char *buf, size_t len, const char *dir, const char *name)
{
	int n = snprintf(buf, len, "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= len) {
		fprintf(stderr, "strata: %s/%s: %s\n", dir, name, strerror(ENAMETOOLONG));
		return false;
	}
	return true;
}

/* ---- the superblock --------------------------------------------------------- */

/* SUPER is missing: say whether DIR itself is missing or just not a store. */
static int no_super(const char *cmd, const char *dir)
{
	struct stat st;
	if (stat(dir, &st))
		fprintf(stderr, "strata %s: %s: %s\n", cmd, dir, strerror(errno));
	else if (!S_ISDIR(st.st_mode))
		fprintf(stderr, "strata %s: %s: %s\n", cmd, dir, strerror(ENOTDIR));
	else
		fprintf(stderr, "strata %s: %s: not a Strata store (no SUPER file): %s\n", cmd, dir,
			strata_strerror(STRATA_EFORMAT));
	return CLI_FAIL;
}

/* What no usable slot means, beyond strata_strerror(); NULL: nothing. */
static const char *sb_failure(int rc)
{
	switch (rc) {
	case STRATA_ETRUNCATED:
		return "shorter than its two 4096-byte slots";
	case STRATA_ECORRUPT:
		return "both superblock slots are corrupt";
	default:
		return NULL; /* STRATA_EFORMAT says "not a Strata store" itself */
	}
}

static int sb_failed(const char *cmd, const char *path, int rc, const sb_read_report *rep)
{
	const char *what = sb_failure(rc);
	fprintf(stderr, "strata %s: %s: %s%s%s\n", cmd, path, what ? what : "", what ? ": " : "",
		strata_strerror(rc));
	for (int i = 0; i < 2; i++)
		fprintf(stderr, "  slot %d: %s\n", i, strata_strerror(rep->slot_status[i]));
	return CLI_FAIL;
}

int cli_read_super(const char *cmd, const char *dir, sb_state *sb, sb_read_report *rep)
{
	char path[PATH_MAX];
	if (!cli_path(path, sizeof path, dir, "SUPER"))
		return CLI_FAIL;
	io_file *f;
	int rc = io_open(io_env_posix(), path, IO_RDONLY, &f);
	if (rc == -ENOENT)
		return no_super(cmd, dir);
	if (rc) {
		fprintf(stderr, "strata %s: %s: %s\n", cmd, path, strata_strerror(rc));
		return CLI_FAIL;
	}
	*rep = (sb_read_report){{STRATA_ETRUNCATED, STRATA_ETRUNCATED}, -1};
	rc = sb_read(f, sb, rep);
	io_close(f);
	return rc ? sb_failed(cmd, path, rc, rep) : CLI_OK;
}

/* ---- printing --------------------------------------------------------------- */

static void field(const char *key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void field(const char *key, const char *fmt, ...)
{
	va_list ap;
	printf("  %-*s", KEY_WIDTH, key);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/* "1048576 B (1.0 MiB)", or "512 B" below a KiB. */
static const char *fmt_size(char *buf, size_t len, uint64_t bytes)
{
	char human[32];
	if (bytes < 1024)
		snprintf(buf, len, "%" PRIu64 " B", bytes);
	else
		snprintf(buf, len, "%" PRIu64 " B (%s)", bytes, cli_fmt_bytes(human, sizeof human, bytes));
	return buf;
}

static void print_slots(const sb_state *sb, const sb_read_report *rep)
{
	field("format version", "%u", SB_VERSION);
	field("current slot", "%d (generation %" PRIu64 ")", rep->chosen, sb->generation);
	for (int i = 0; i < 2; i++) {
		char key[16];
		snprintf(key, sizeof key, "slot %d", i);
		int st = rep->slot_status[i];
		field(key, "%s%s", st ? strata_strerror(st) : "ok", i == rep->chosen ? ", current" : "");
	}
}

static void print_superblock(const char *dir, const sb_state *sb, const sb_read_report *rep)
{
	char uuid[33], size[64];
	for (int i = 0; i < 16; i++)
		snprintf(uuid + 2 * i, 3, "%02x", sb->uuid[i]);
	printf("Store %s\n", dir);
	print_slots(sb, rep);
	field("generation", "%" PRIu64, sb->generation);
	field("store UUID", "%s", uuid);
	if (sb->ckpt_gen)
		field("checkpoint", "generation %" PRIu64 ", epoch %" PRIu64 ", %s, header CRC 0x%08" PRIx32,
		      sb->ckpt_gen, sb->ckpt_epoch, fmt_size(size, sizeof size, sb->ckpt_size),
		      sb->ckpt_crc);
	else
		field("checkpoint", "none yet (generation 0, epoch %" PRIu64 ")", sb->ckpt_epoch);
	field("clean shutdown", "%s", sb->flags & SB_FLAG_CLEAN ? "yes" : "no");
	field("WAL start LSN", "%" PRIu64, sb->wal_start_lsn);
	field("WAL file size", "%s", fmt_size(size, sizeof size, sb->wal_file_size));
	field("last epoch", "%" PRIu64, sb->last_epoch);
}

/* ---- the files of the directory ------------------------------------------- */

typedef struct name_list {
	char **v;
	size_t n, cap;
	int rc;
} name_list;

static int collect(void *ctx, const char *name)
{
	name_list *l = ctx;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 32;
		char **v = realloc(l->v, cap * sizeof *v);
		if (!v)
			return l->rc = STRATA_ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	if (!(l->v[l->n] = strdup(name)))
		return l->rc = STRATA_ENOMEM;
	l->n++;
	return 0;
}

static void names_free(name_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "wal." followed by exactly 16 lower-case hex digits; *seq gets them. */
static bool wal_name(const char *name, uint64_t *seq)
{
	if (strncmp(name, "wal.", 4) != 0 || strlen(name) != 20)
		return false;
	for (const char *p = name + 4; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	*seq = strtoull(name + 4, NULL, 16);
	return true;
}

/* Opens dir/name read-only and gets its size; the header too if hdr. */
static int read_file(const char *dir, const char *name, uint64_t *size, uint8_t *hdr)
{
	char path[PATH_MAX];
	if (!cli_path(path, sizeof path, dir, name))
		return -ENAMETOOLONG;
	io_file *f;
	int rc = io_open(io_env_posix(), path, IO_RDONLY, &f);
	if (rc)
		return rc;
	rc = io_size(f, size);
	if (!rc && hdr)
		rc = *size < WAL_FILE_HDR ? STRATA_ETRUNCATED : io_pread(f, hdr, WAL_FILE_HDR, 0);
	io_close(f);
	return rc;
}

/* What the WAL file header says, judged against the superblock. */
static void wal_header_note(char *buf, size_t len, const uint8_t *hdr, uint64_t seq,
			    const sb_state *sb)
{
	wal_file_header h;
	int rc = walf_header_decode(hdr, &h);
	if (rc)
		snprintf(buf, len, "bad header: %s", strata_strerror(rc));
	else if (memcmp(h.uuid, sb->uuid, 16))
		snprintf(buf, len, "header of another store");
	else if (h.seq != seq || h.file_size != sb->wal_file_size)
		snprintf(buf, len, "header says seq %" PRIu64 ", file size %" PRIu64, h.seq, h.file_size);
	else
		snprintf(buf, len, "seq %" PRIu64 ", salt 0x%08" PRIx32, h.seq, h.salt);
}

static void print_wal_files(const char *dir, const name_list *l, const sb_state *sb)
{
	size_t shown = 0;
	printf("WAL files\n");
	for (size_t i = 0; i < l->n; i++) {
		uint64_t seq, size = 0;
		uint8_t hdr[WAL_FILE_HDR];
		char note[160], sz[64];
		if (!wal_name(l->v[i], &seq))
			continue;
		shown++;
		int rc = read_file(dir, l->v[i], &size, hdr);
		if (rc == STRATA_ETRUNCATED)
			snprintf(note, sizeof note, "shorter than a WAL file header");
		else if (rc)
			snprintf(note, sizeof note, "cannot read: %s", strata_strerror(rc));
		else
			wal_header_note(note, sizeof note, hdr, seq, sb);
		printf("  %s  %s  %s\n", l->v[i], fmt_size(sz, sizeof sz, size), note);
	}
	if (!shown)
		printf("  none\n");
}

/* Lists the entries that start with prefix (or are exactly it), with sizes. */
static void print_plain_files(const char *title, const char *dir, const name_list *l,
			      const char *prefix, bool exact)
{
	size_t shown = 0;
	printf("%s\n", title);
	for (size_t i = 0; i < l->n; i++) {
		const char *name = l->v[i];
		if (exact ? strcmp(name, prefix) != 0 : strncmp(name, prefix, strlen(prefix)) != 0)
			continue;
		shown++;
		uint64_t size;
		char sz[64];
		int rc = read_file(dir, name, &size, NULL);
		if (rc)
			printf("  %s  cannot read: %s\n", name, strata_strerror(rc));
		else
			printf("  %s  %s\n", name, fmt_size(sz, sizeof sz, size));
	}
	if (!shown)
		printf("  none\n");
}

static int print_files(const char *dir, const sb_state *sb)
{
	name_list l = {0};
	int rc = io_list(io_env_posix(), dir, collect, &l);
	if (!rc && l.n)
		qsort(l.v, l.n, sizeof *l.v, cmp_names);
	if (!rc) {
		print_wal_files(dir, &l, sb);
		print_plain_files("Checkpoint files", dir, &l, "ckpt.", false);
		print_plain_files("Data file", dir, &l, "data", true);
	}
	names_free(&l);
	if (rc)
		fprintf(stderr, "strata info: %s: listing the directory: %s\n", dir, strata_strerror(rc));
	return rc ? CLI_FAIL : CLI_OK;
}

/* --stats: the store opened (recovered), its strata_stats figures. */
static int print_stats(const char *dir)
{
	strata_store *s;
	int rc = cli_open_store("info", dir, &s, NULL);
	if (rc)
		return rc;
	strata_store_stats st;
	char a[64], b[64];
	if ((rc = strata_stats(s, &st))) {
		fprintf(stderr, "strata info: %s: %s\n", dir, strata_strerror(rc));
		cli_close_store("info", dir, s);
		return CLI_FAIL;
	}
	printf("Contents\n");
	field("nodes", "%" PRIu64 " live, %" PRIu64 " retired", st.nodes_live, st.nodes_retired);
	field("live bytes", "%s", fmt_size(a, sizeof a, st.live_bytes));
	field("file bytes", "%s (data file and checkpoint)", fmt_size(b, sizeof b, st.file_bytes));
	field("amplification", "%.2f (file bytes / live bytes)", st.space_amplification);
	field("object table", "%" PRIu64 " chunks on disk, %" PRIu64 " loaded", st.chunks_on_disk,
	      st.chunks_loaded);
	field("segment headers", "%" PRIu64 " not built yet", st.segments_unbuilt);
	field("compaction", "%" PRIu64 " rounds, %" PRIu64 " nodes moved, %" PRIu64
	      " segments given back (this open)", st.compact_rounds, st.compact_moved_nodes,
	      st.compact_segments_freed);
	field("cache (this open)", "%" PRIu64 " hits, %" PRIu64 " misses, %" PRIu64 " evictions, %s read",
	      st.cache_hits, st.cache_misses, st.cache_evictions,
	      fmt_size(a, sizeof a, st.cache_bytes_read));
	return cli_close_store("info", dir, s);
}

int cmd_info(int argc, char **argv)
{
	const cli_command *self = cli_find("info");
	bool stats = false;
	const char *dir = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--stats"))
			stats = true;
		else if (argv[i][0] == '-' || argv[i][0] == '\0' || dir)
			return cli_usage_error(self, dir ? "too many arguments" : "bad argument '%s'", argv[i]);
		else
			dir = argv[i];
	}
	if (!dir)
		return cli_usage_error(self, "missing DIR");
	sb_state sb;
	sb_read_report rep;
	int rc = cli_read_super("info", dir, &sb, &rep);
	if (rc)
		return rc;
	print_superblock(dir, &sb, &rep);
	rc = print_files(dir, &sb);
	return rc || !stats ? rc : print_stats(dir);
}
