/* multi_b.c — a library object that multi_a.c links against. */
#include "bcship.h"

int64_t b_state = 40;

int64_t b_scale(int64_t v) { return v * 3 + b_state; }
