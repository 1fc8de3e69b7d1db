// Package call embeds the customer's "Call us" page: plain HTML, CSS and
// JavaScript with no build step, served by telephony/webrtc.
package call

import "embed"

// Files holds index.html, call.js and call.css.
//
//go:embed index.html call.js call.css
var Files embed.FS
