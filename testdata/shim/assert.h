/* Freestanding stand-in for <assert.h>, for third-party headers. */
#define assert(x) ((void)0)
#define static_assert _Static_assert
