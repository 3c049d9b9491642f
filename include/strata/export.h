/* export.h — symbol visibility. The library is built with hidden visibility;
 * only declarations marked STRATA_API are exported. */
#ifndef STRATA_EXPORT_H
#define STRATA_EXPORT_H
#if defined(STRATA_BUILDING) && defined(__GNUC__)
#define STRATA_API __attribute__((visibility("default")))
#else
#define STRATA_API
#endif
#endif
