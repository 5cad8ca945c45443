/* chase.c — a distributed pointer chase, the X-RDMA headline kernel.
 *
 * Every node registers a region "chase" holding list elements. A key names
 * an element: node id in the high 32 bits, index in the low 32. The kernel
 * follows links while they stay on this node, forwards itself (code and
 * state) to the owner of the next element when they leave it, and replies
 * to the origin when the walk is done. */
#include "bcship.h"

struct elem {
  uint64_t next; /* key of the next element, or CHASE_END */
  uint64_t value;
};

struct walk {
  uint64_t key;       /* element to visit next */
  uint64_t remaining; /* links still to follow */
  uint64_t hops;      /* node-to-node moves so far */
  uint64_t sum;       /* running sum of visited values */
};

#define CHASE_END 0xffffffffffffffffull

BC_ENTRY int64_t chase(bc_ctx *ctx, const void *arg, uint64_t n) {
  if (n < sizeof(struct walk))
    return -1;
  struct walk w;
  memcpy(&w, arg, sizeof w);
  uint64_t len;
  const struct elem *e = bc_region(ctx, "chase", &len);
  if (!e)
    return -2;
  uint64_t count = len / sizeof(struct elem);
  uint32_t self = bc_self(ctx);
  while (w.remaining > 0 && w.key != CHASE_END) {
    uint32_t owner = (uint32_t)(w.key >> 32);
    if (owner != self) {
      w.hops++;
      return bc_forward(ctx, owner, &w, sizeof w);
    }
    uint32_t i = (uint32_t)w.key;
    if (i >= count)
      return -3;
    w.sum += e[i].value;
    w.key = e[i].next;
    w.remaining--;
  }
  return bc_reply(ctx, &w, sizeof w);
}
