package main

import (
	"fmt"
	"image/color"
	"math"
	"strconv"

	"github.com/bcship/bcship/xrdma"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// xplot writes a PNG of p50 latency against size, log-log, one line per
// mode.
func xplot(o xbenchOptions, pts []xpoint) error {
	p := plot.New()
	where := "one process per node, loopback TCP"
	switch {
	case o.netns:
		where = "one process and network namespace per node"
	case !o.procs:
		where = "in one process, loopback TCP"
	}
	p.Title.Text = fmt.Sprintf("%s: p50 latency vs %s (%d data nodes, %s)", o.op.name, o.op.sizeName, o.nodes, where)
	p.X.Label.Text = o.op.sizeName
	p.Y.Label.Text = fmt.Sprintf("latency per %s (µs)", o.op.name)
	var sizes []float64
	for _, pt := range pts {
		sizes = append(sizes, float64(pt.size))
	}
	// Ticks at the measured sizes, and at 1-2-5 steps of latency: the
	// default log ticks label only powers of ten.
	p.X.Tick.Marker = plot.ConstantTicks(labelled(sizes))
	if len(pts) > 1 {
		p.X.Scale = plot.LogScale{}
	}
	p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, steps125{}
	p.Add(plotter.NewGrid())
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.XOffs, p.Legend.YOffs = vg.Points(8), -vg.Points(4)
	styles := []struct {
		mode  xrdma.Mode
		name  string
		color color.RGBA
		shape draw.GlyphDrawer
		dash  []vg.Length
	}{
		{xrdma.GET, "GET from the origin", color.RGBA{R: 200, G: 40, B: 40, A: 255}, draw.CircleGlyph{}, nil},
		{xrdma.AM, "active message (predeployed)", color.RGBA{R: 40, G: 90, B: 200, A: 255}, draw.SquareGlyph{}, nil},
		{xrdma.Shipped, "shipped (warm)", color.RGBA{R: 20, G: 150, B: 60, A: 255}, draw.TriangleGlyph{}, nil},
		{xrdma.Cold, "shipped (cold: code transfer)", color.RGBA{R: 120, G: 120, B: 120, A: 255}, draw.CrossGlyph{}, []vg.Length{vg.Points(4), vg.Points(3)}},
	}
	for _, st := range styles {
		var xys plotter.XYs
		for _, pt := range pts {
			if s := pt.samples[st.mode]; s != nil && s.N() > 0 {
				xys = append(xys, plotter.XY{X: float64(pt.size), Y: float64(s.P50()) / 1e3})
			}
		}
		if len(xys) == 0 {
			continue
		}
		l, sc, err := plotter.NewLinePoints(xys)
		if err != nil {
			return err
		}
		l.Color, l.Width, l.Dashes = st.color, vg.Points(1.5), st.dash
		sc.Color, sc.Shape, sc.Radius = st.color, st.shape, vg.Points(3)
		p.Add(l, sc)
		p.Legend.Add(st.name, l, sc)
	}
	// Headroom above the highest point keeps the legend off the lines
	// (about a fifth of the height on a log axis spanning two decades).
	if p.Y.Max > 0 {
		p.Y.Max *= 4
		p.Y.Min /= 1.3
	}
	return p.Save(8*vg.Inch, 5*vg.Inch, o.plot)
}

func labelled(vs []float64) []plot.Tick {
	ts := make([]plot.Tick, len(vs))
	for i, v := range vs {
		ts[i] = plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'g', -1, 64)}
	}
	return ts
}

// steps125 ticks a log axis at 1, 2 and 5 times each power of ten.
type steps125 struct{}

func (steps125) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for dec := math.Pow(10, math.Floor(math.Log10(lo))); dec <= hi; dec *= 10 {
		for _, m := range []float64{1, 2, 5} {
			if v := m * dec; v >= lo && v <= hi {
				ts = append(ts, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'g', -1, 64)})
			}
		}
	}
	if len(ts) < 2 { // a narrow range: label its ends
		ts = append(ts, plot.Tick{Value: lo, Label: strconv.FormatFloat(lo, 'g', 3, 64)},
			plot.Tick{Value: hi, Label: strconv.FormatFloat(hi, 'g', 3, 64)})
	}
	return ts
}
