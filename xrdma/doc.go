// Package xrdma runs the X-RDMA operations — a distributed pointer chase, a
// chained hash-table lookup and a scattered gather — three ways over the same
// data, so that shipped code can be measured against the two ways of doing
// without it:
//
//   - GET: the origin drives the operation with one remote GET per
//     dereference (Node.Get), as an RDMA READ client would;
//   - AM: the same C handler predeployed on every data node
//     (Node.RegisterAM) and called by name (Node.CallAM);
//   - shipped: the handler travels as a signed bundle the first time and as
//     its hash afterwards (Node.Invoke, Node.InvokeHash).
//
// The kernels are the prebuilt objects of package kernels (testdata/chase.c,
// lookup.c, gather.c). This package builds each operation's data with seeded
// random placement (NewChaseList, NewHashTable, NewGatherData), computes the
// answer in Go, and checks every run of every mode against it: a mode that
// answers differently fails with a *MismatchError.
//
// Cluster starts the in-process cluster the benchmarks use: data nodes
// 0…N-1 and an origin, node N, that holds no data and that no data node
// lists (so bc_nodes is N on the data nodes, which lookup's owner function
// needs). Measure runs an Op in all three modes, interleaved so that drift on
// a shared machine hits every mode alike, plus cold shipped runs whose code
// no node has yet.
package xrdma
