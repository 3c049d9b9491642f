/*
 * kv_text.c — the text side of `strata kv`: escaping and unescaping keys
 * and values (the form is described in kv.h), reading lines of any length,
 * and a progress line for long loads on a terminal.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kv.h"

void kv_escape(FILE *f, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = b[i];
		if (c == '\\')
			fputs("\\\\", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\r')
			fputs("\\r", f);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool kv_unescape(char *s, size_t n, size_t *out_len)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '\\') {
			s[o++] = s[i];
			continue;
		}
		if (++i == n)
			return false;
		switch (s[i]) {
		case '\\': s[o++] = '\\'; break;
		case 't': s[o++] = '\t'; break;
		case 'n': s[o++] = '\n'; break;
		case 'r': s[o++] = '\r'; break;
		case 'x': {
			if (i + 2 >= n)
				return false;
			int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
			if (hi < 0 || lo < 0)
				return false;
			s[o++] = (char)(hi << 4 | lo);
			i += 2;
			break;
		}
		default:
			return false;
		}
	}
	*out_len = o;
	return true;
}

long kv_getline(FILE *f, char **line, size_t *cap)
{
	ssize_t n = getline(line, cap, f);
	if (n < 0)
		return -1;
	if (n > 0 && (*line)[n - 1] == '\n')
		(*line)[--n] = '\0';
	return (long)n;
}

void kv_progress_start(kv_progress *p, const char *what, FILE *f)
{
	struct stat st;
	p->on = isatty(STDERR_FILENO);
	p->what = what;
	p->total = fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) ? (long)st.st_size : 0;
}

void kv_progress_update(kv_progress *p, uint64_t lines, FILE *f)
{
	if (!p->on || lines % 65536)
		return;
	long pos = ftell(f);
	if (p->total > 0 && pos >= 0)
		fprintf(stderr, "\r%s: %llu lines (%ld%%)", p->what, (unsigned long long)lines,
			pos * 100 / p->total);
	else
		fprintf(stderr, "\r%s: %llu lines", p->what, (unsigned long long)lines);
}

void kv_progress_end(kv_progress *p, uint64_t lines)
{
	if (p->on)
		fprintf(stderr, "\r%s: %llu lines (100%%)\n", p->what, (unsigned long long)lines);
}
