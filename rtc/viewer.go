package rtc

import "context"

// viewerKey is the context key of the name of the credential a request came with.
type viewerKey struct{}

// WithViewer returns ctx naming the holder of the credential the request came with. A WHEP
// session remembers it, and only a request with the same name may end the session (DELETE):
// another viewer who learns a session's URL cannot hang it up.
func WithViewer(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, viewerKey{}, name)
}

// viewerName is the name WithViewer put in ctx, or "".
func viewerName(ctx context.Context) string {
	name, _ := ctx.Value(viewerKey{}).(string)
	return name
}
