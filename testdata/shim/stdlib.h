/* Freestanding stand-in for <stdlib.h>: declarations only, for
 * third-party headers; nothing may call them. */
#include <stddef.h>
void *malloc(size_t n);
void free(void *p);
