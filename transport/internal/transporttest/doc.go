// Package transporttest holds what the transports' tests share.
package transporttest
