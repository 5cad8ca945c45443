/* hostfn.c — plays the host in loader tests: its functions are handed to
 * other objects through a SymbolTable, often from beyond branch range. */
#include "bcship.h"

uint64_t host_mix(uint64_t a, uint64_t b) {
  a ^= b + 0x9e3779b97f4a7c15ull + (a << 6) + (a >> 2);
  return a * 0xff51afd7ed558ccdull;
}
