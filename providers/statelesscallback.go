package providers

// CallbackMayOmitState reports whether the platform of a may call back
// without sidekey's state (Istores documents no state parameter). The
// server then binds such a callback to the browser that started the
// consent instead. False for nil and for every platform that returns
// state.
func CallbackMayOmitState(a AuthCode) bool {
	c, ok := a.(interface{ CallbackMayOmitState() bool })
	return ok && c.CallbackMayOmitState()
}
