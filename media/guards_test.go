package media

import "github.com/parley-ai/parley"

// A leg is what playouts and mixers write to.
var (
	_ FrameSink   = parley.Leg(nil)
	_ FrameWriter = parley.Leg(nil)
	_ FrameWriter = FrameSink(nil)
)
