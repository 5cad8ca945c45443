/* lookup.c — a distributed chained hash table, an X-RDMA operation.
 *
 * Every node registers a region "htab": a header, a bucket array and an
 * entry array. A key's owner is hash(key) % nodes, and its bucket is
 * (hash(key) / nodes) % nbuckets on the owner. The kernel ships itself to
 * the owner and walks the bucket's chain there, next to the data, instead
 * of fetching one entry per round trip. */
#include "bcship.h"

struct htab {
  uint64_t nbuckets;
  uint64_t nentries;
  /* uint64_t bucket[nbuckets]: index+1 of the chain's first entry, 0 = empty
   * struct entry entry[nentries] */
};

struct entry {
  uint64_t key;
  uint64_t value;
  uint64_t next; /* index+1 of the next entry in the chain, 0 = end */
};

struct query {
  uint64_t key;
  uint64_t probes; /* entries compared, filled in by the owner */
  uint64_t value;
  uint64_t found;
};

/* Fibonacci hashing: cheap and the same in Go (xrdma.Hash). */
static uint64_t hash(uint64_t key) { return key * 0x9e3779b97f4a7c15ull; }

BC_ENTRY int64_t lookup(bc_ctx *ctx, const void *arg, uint64_t n) {
  if (n < sizeof(struct query))
    return -1;
  struct query q;
  memcpy(&q, arg, sizeof q);
  uint64_t h = hash(q.key);
  uint32_t owner = (uint32_t)(h % bc_nodes(ctx));
  if (owner != bc_self(ctx))
    return bc_forward(ctx, owner, &q, sizeof q);
  uint64_t len;
  const struct htab *t = bc_region(ctx, "htab", &len);
  if (!t || len < sizeof *t)
    return -2;
  const uint64_t *bucket = (const uint64_t *)(t + 1);
  const struct entry *e = (const struct entry *)(bucket + t->nbuckets);
  if (t->nbuckets == 0 ||
      sizeof *t + t->nbuckets * 8 + t->nentries * sizeof *e > len)
    return -3;
  uint64_t i = bucket[(h / bc_nodes(ctx)) % t->nbuckets];
  q.found = 0;
  q.probes = 0;
  while (i != 0 && i <= t->nentries && q.probes <= t->nentries) {
    const struct entry *x = &e[i - 1];
    q.probes++;
    if (x->key == q.key) {
      q.value = x->value;
      q.found = 1;
      break;
    }
    i = x->next;
  }
  return bc_reply(ctx, &q, sizeof q);
}
