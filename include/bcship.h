/* bcship.h — the host ABI for bcship kernels.
 *
 * Kernels are freestanding C compiled with
 *   clang -ffreestanding -nostdlibinc -fno-stack-protector -c
 * for each target triple. An entry point has the signature
 *
 *   int64_t entry(bc_ctx *ctx, const void *arg, uint64_t arg_len);
 *
 * and is marked with BC_ENTRY so `bcship build` records it. Helpers never
 * block and never call back into the host: they append actions to the
 * invocation's outbox, which the node carries out after the entry returns.
 */
#ifndef BCSHIP_H
#define BCSHIP_H

typedef __INT8_TYPE__ int8_t;
typedef __INT16_TYPE__ int16_t;
typedef __INT32_TYPE__ int32_t;
typedef __INT64_TYPE__ int64_t;
typedef __UINT8_TYPE__ uint8_t;
typedef __UINT16_TYPE__ uint16_t;
typedef __UINT32_TYPE__ uint32_t;
typedef __UINT64_TYPE__ uint64_t;
typedef __UINTPTR_TYPE__ uintptr_t;
typedef __INTPTR_TYPE__ intptr_t;
typedef __SIZE_TYPE__ size_t;

#ifdef __cplusplus
extern "C" {
#endif

/* Opaque per-invocation context. */
typedef struct bc_ctx bc_ctx;

/* BC_ENTRY marks a function as an entry point of the kernel. Entries are
 * placed in the executable section .text.bcentry; `bcship build` and
 * `bcship inspect` list the global functions defined there. The section
 * survives in LLVM bitcode, so objects compiled at the target keep it. */
#define BC_ENTRY                                                              \
  __attribute__((section(".text.bcentry"), used, visibility("default")))

/* Data regions registered on the local node. Returns NULL when the region
 * does not exist; *len receives its size in bytes. */
void *bc_region(bc_ctx *ctx, const char *name, uint64_t *len);

/* Sends n bytes to the origin of this invocation. Returns 0, or -1 when the
 * outbox is full. */
int bc_reply(bc_ctx *ctx, const void *p, uint64_t n);

/* Re-runs the current entry of this code on node with the given argument;
 * the origin is kept, so its result goes straight to the origin. */
int bc_forward(bc_ctx *ctx, uint32_t node, const void *arg, uint64_t n);

/* Runs entry (a name in this code) on node with the given argument. */
int bc_invoke(bc_ctx *ctx, uint32_t node, const char *entry, const void *arg,
              uint64_t n);

/* Writes n bytes at offset off of the region named region on node. */
int bc_put(bc_ctx *ctx, uint32_t node, const char *region, uint64_t off,
           const void *p, uint64_t n);

/* Fetches n bytes at offset off of region on node, then runs then_entry of
 * this code here with the bytes as its argument (continuation style). */
int bc_get(bc_ctx *ctx, uint32_t node, const char *region, uint64_t off,
           uint64_t n, const char *then_entry);

uint32_t bc_self(bc_ctx *ctx);  /* this node's id */
uint32_t bc_nodes(bc_ctx *ctx); /* number of nodes in the cluster */
void bc_log(bc_ctx *ctx, const char *msg);

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* BCSHIP_H */
