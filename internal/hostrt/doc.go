// Package hostrt is bcship's host runtime: the C helpers every kernel may
// call (memcpy and friends, 128-bit division, bc_reply, bc_region, …),
// compiled by clang for each supported architecture, committed as objects,
// embedded in the binary and loaded with bcship's own loader.
//
// The invocation context a kernel receives (struct bc_ctx in rt.c) and the
// records its helpers append to the outbox are mirrored here as Ctx and
// Action.
package hostrt
