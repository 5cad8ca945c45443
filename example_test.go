package bcship_test

import (
	"context"
	"fmt"
	"log"

	"github.com/bcship/bcship"
	"github.com/bcship/bcship/internal/chase"
	"github.com/bcship/bcship/kernels"
	"github.com/bcship/bcship/loader"
	"github.com/bcship/bcship/toolchain"
)

// Two nodes on loopback: node 2 holds a linked list, node 1 ships the
// prebuilt pointer-chase kernel there and gets the walk back.
func ExampleNode_Invoke() {
	ctx := context.Background()
	var nodes []*bcship.Node
	for _, id := range []uint32{1, 2} {
		// Insecure: this example ships unsigned code.
		n, err := bcship.NewNode(bcship.Config{ID: id, Listen: "127.0.0.1:0", Insecure: true})
		if err != nil {
			log.Fatal(err)
		}
		defer n.Close()
		if err := n.Start(ctx); err != nil {
			log.Fatal(err)
		}
		nodes = append(nodes, n)
	}
	nodes[0].SetPeer(2, nodes[1].Addr().String())

	l := chase.New([]uint32{2}, 100, 1)
	nodes[1].RegisterRegion("chase", l.Regions[2])

	obj, _ := kernels.Object("chase", loader.HostMachine())
	code, _ := toolchain.ParseCode(obj) // a raw object, wrapped into a bundle
	res, err := nodes[0].Invoke(ctx, 2, code, "chase", chase.Walk{Key: l.Head, Remaining: 10}.Bytes())
	if err != nil {
		log.Fatal(err)
	}
	w, _ := chase.Parse(res.Reply())
	fmt.Println("reply from node", res.Node, "sum matches:", w.Sum == l.Expect(10).Sum)
	// Output: reply from node 2 sum matches: true
}
