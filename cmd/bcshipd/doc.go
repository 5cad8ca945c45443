// Command bcshipd is the bcship node runtime alone, for machines that only
// receive, link and run shipped code: DPU firmware images (BlueField-class
// aarch64 SmartNICs), appliances, minimal containers. It serves registered
// regions, keeps the code cache, loads kernels with bcship's own ELF loader
// and runs them — and nothing else: no compiler, no CLI, no plotting in its
// import graph (TestImportGraph enforces it). A node without a compiler
// announces no LLVM in HELLO, so origins send it objects for its triple,
// cross-compiling the bundle's bitcode when it has none.
//
// Configuration comes from flags, each with an environment variable that
// the flag overrides:
//
//	--id N              BCSHIP_ID        this node's id (required)
//	--listen ADDR       BCSHIP_LISTEN    TCP address to accept peers on
//	--advertise ADDR    BCSHIP_ADVERTISE address announced to peers
//	--peers SPEC        BCSHIP_PEERS     peers: "1=10.0.0.1:7401,2=10.0.0.2:7402",
//	                                     or the path of a cluster.toml
//	--trust DIR         BCSHIP_TRUST     directory of trusted *.pub keys
//	--region NAME=FILE                   register a file as a region (repeatable)
//	--http ADDR         BCSHIP_HTTP      serve GET /healthz and /metrics
//	--log-level LEVEL   BCSHIP_LOG_LEVEL debug, info, warn or error
//	--insecure                           run unsigned code (flag only)
//
// A SPEC containing "=" is an inline list; anything else is a cluster file,
// from which --listen and --trust default to this node's entries, as for
// `bcship serve`. Logs are JSON lines on stderr. The node is ready when its
// listener accepts; bcshipd then logs "ready" with the start-up time and
// tells systemd (Type=notify) when $NOTIFY_SOCKET is set. SIGTERM or
// SIGINT drains it: /healthz turns 503, kernels already running finish
// (up to --drain-timeout), then the node closes. Exit status: 0 after a
// clean shutdown, 2 for bad configuration, 1 for anything else.
package main
