package wire_test

import (
	"bytes"
	"fmt"

	"github.com/bcship/bcship/wire"
)

func ExampleAppendFrame() {
	inv := &wire.Invoke{Origin: 1, OriginRequest: 7, TTL: 4, Entry: "count", Arg: []byte("key")}
	frame, err := wire.AppendFrame(nil, wire.Header{RequestID: 7, Source: 1}, inv)
	if err != nil {
		panic(err)
	}
	fmt.Println(len(frame), "bytes:", wire.HeaderSize, "header +", len(frame)-wire.HeaderSize, "payload")
	// Output: 90 bytes: 24 header + 66 payload
}

func ExampleReadFrame() {
	var conn bytes.Buffer // stands in for a net.Conn
	_, _ = wire.WriteFrame(&conn, nil, wire.Header{RequestID: 9, Source: 2}, &wire.Get{Region: "table", Length: 16})
	_, _ = wire.WriteFrame(&conn, nil, wire.Header{RequestID: 10, Source: 2}, &wire.PutReply{})

	var buf []byte
	for {
		f, err := wire.ReadFrame(&conn, 1<<20, buf)
		if err != nil {
			break // io.EOF here; a real node would answer or drop the peer
		}
		buf = f.Payload // reuse the storage for the next frame

		switch f.Type {
		case wire.TypeGet:
			var g wire.Get
			if err := g.Decode(f.Payload); err != nil {
				fmt.Println(err)
				continue
			}
			fmt.Printf("request %d from node %d: GET %s[%d:+%d]\n", f.RequestID, f.Source, g.Region, g.Offset, g.Length)
		default:
			m, err := wire.Decode(f.Type, f.Payload)
			fmt.Printf("request %d: %v %+v %v\n", f.RequestID, f.Type, m, err)
		}
	}
	// Output:
	// request 9 from node 2: GET table[0:+16]
	// request 10: PUT_REPLY &{Status:ok} <nil>
}
