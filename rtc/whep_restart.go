package rtc

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// A WHEP viewer's ICE restart (RFC 9725 section 4.3.2, as WHEP reuses it): the viewer PATCHes
// its session with an SDP fragment (application/trickle-ice-sdpfrag, RFC 8840) carrying new
// ICE credentials; the camera applies its offer again with them (pion restarts ICE on the
// changed credentials), answers, and returns its own new credentials and candidates. Trickled
// candidates alone are not taken: lenscap's answers carry every candidate.

type restartRequest struct {
	ufrag, pwd string
	reply      chan restartReply
}

type restartReply struct {
	frag string
	err  error
}

// errNoRestart is a fragment without new credentials: trickle ICE, which lenscap does not take.
var errNoRestart = errors.New("trickle ICE is not supported: PATCH an ICE restart (a=ice-ufrag and a=ice-pwd) or send a complete offer")

func (s *Server) patchWHEP(w http.ResponseWriter, r *http.Request) {
	ws := s.whepSessionOf(r)
	if ws == nil {
		http.Error(w, "no such session", http.StatusNotFound)
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/trickle-ice-sdpfrag") {
		http.Error(w, "a WHEP PATCH is application/trickle-ice-sdpfrag", http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(s.cfg.MaxSDPBytes)))
	if err != nil {
		http.Error(w, "reading the fragment: "+err.Error(), http.StatusBadRequest)
		return
	}
	ufrag, pwd := sdpAttr(string(body), "ice-ufrag"), sdpAttr(string(body), "ice-pwd")
	if ufrag == "" || pwd == "" {
		http.Error(w, errNoRestart.Error(), http.StatusMethodNotAllowed)
		return
	}
	req := restartRequest{ufrag: ufrag, pwd: pwd, reply: make(chan restartReply, 1)}
	select {
	case ws.restartC <- req:
	case <-ws.closeC:
		http.Error(w, "no such session", http.StatusNotFound)
		return
	case <-r.Context().Done():
		return
	}
	rep := <-req.reply
	if rep.err != nil {
		http.Error(w, rep.err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/trickle-ice-sdpfrag")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, rep.frag)
}

// whepSessionOf is the request's session, when the request's holder made it.
func (s *Server) whepSessionOf(r *http.Request) *whepSession {
	id := r.PathValue("id")
	s.mu.Lock()
	defer s.mu.Unlock()
	for v := range s.sessions {
		if ws, ok := v.(*whepSession); ok && ws.id == id && ws.owner == viewerName(r.Context()) {
			return ws // another holder's session is "no such session": ids are not to be probed
		}
	}
	return nil
}

// restart applies the viewer's offer again with new ICE credentials and returns the fragment
// of the new answer: its credentials and candidates.
func (ws *whepSession) restart(ufrag, pwd string) (string, error) {
	offer := setSDPAttr(setSDPAttr(ws.offer, "ice-ufrag", ufrag), "ice-pwd", pwd)
	if err := answerWHEP(ws.conn.pc, offer); err != nil {
		return "", fmt.Errorf("ICE restart: %w", err)
	}
	ws.offer = offer
	ws.log.Info("ICE restart")
	answer := ws.conn.pc.LocalDescription().SDP
	frag := fmt.Sprintf("a=ice-ufrag:%s\r\na=ice-pwd:%s\r\n", sdpAttr(answer, "ice-ufrag"), sdpAttr(answer, "ice-pwd"))
	for _, l := range strings.Split(answer, "\n") {
		if l = strings.TrimRight(l, "\r"); strings.HasPrefix(l, "a=candidate:") {
			frag += l + "\r\n"
		}
	}
	return frag, nil
}

// sdpAttr is the value of the first a=NAME: line of an SDP (or fragment), "" if none.
func sdpAttr(sdp, name string) string {
	for _, l := range strings.Split(sdp, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimRight(l, "\r"), "a="+name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// setSDPAttr replaces the value of every a=NAME: line of an SDP.
func setSDPAttr(sdp, name, value string) string {
	lines := strings.Split(sdp, "\n")
	for i, l := range lines {
		cr := strings.HasSuffix(l, "\r")
		if strings.HasPrefix(strings.TrimRight(l, "\r"), "a="+name+":") {
			lines[i] = "a=" + name + ":" + value
			if cr {
				lines[i] += "\r"
			}
		}
	}
	return strings.Join(lines, "\n")
}
