package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/lenscap/lenscap/cmd/internal/tlsconf"
)

// newTLS is the HTTPS certificate: tls_cert and tls_key when set; without them a self-signed
// certificate made in the state directory at first start (its fingerprint is logged and shown
// by lenscap doctor), on a real board and on any listener beyond loopback, so that no
// credential crosses a network in clear; nil (plain HTTP) only for the simulated board on
// loopback (make run).
func newTLS(cfg Config, simulated bool, log *slog.Logger) (*tlsconf.Reloader, error) {
	certFile, keyFile := cfg.TLSCert, cfg.TLSKey
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("config: tls_cert and tls_key go together: set both or neither")
	}
	if certFile == "" {
		if simulated && isLoopback(cfg.Listen) {
			return nil, nil
		}
		hosts, err := tlsconf.InterfaceHosts()
		if err != nil {
			log.Warn("listing the network interfaces for the certificate's names", "err", err)
		}
		if host, _, err := net.SplitHostPort(cfg.Listen); err == nil && host != "" {
			hosts = append(hosts, host)
		}
		var created bool
		certFile, keyFile, created, err = tlsconf.Ensure(cfg.StateDir, cfg.ID, hosts, time.Now())
		if err != nil {
			return nil, err
		}
		if created {
			log.Info("self-signed certificate created", "cert", certFile)
		}
	}
	return tlsconf.Load(certFile, keyFile)
}

// reloadOnSIGHUP reloads the certificate on every SIGHUP until ctx ends; a bad new pair keeps
// the old one. The handler is installed before run starts anything: SIGHUP's default action
// would end the process.
func reloadOnSIGHUP(r *tlsconf.Reloader, log *slog.Logger) (wait func(ctx context.Context) error) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return func(ctx context.Context) error {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-hup:
				if err := r.Reload(); err != nil {
					log.Error("certificate not reloaded: keeping the old one", "err", err)
					continue
				}
				log.Info("certificate reloaded", "fingerprint", r.Fingerprint(), "not_after", r.Leaf().NotAfter)
			}
		}
	}
}

// scheme is the listener's URL scheme.
func scheme(r *tlsconf.Reloader) string {
	if r == nil {
		return "http"
	}
	return "https"
}

// tlsLog are the certificate's attributes for the start log.
func tlsLog(r *tlsconf.Reloader) []any {
	if r == nil {
		return nil
	}
	return []any{"fingerprint", r.Fingerprint(), "spki_sha256", r.SPKIHash(),
		"not_after", r.Leaf().NotAfter.Format(time.DateOnly)}
}

// tlsDoctorLine is what doctor says of HTTPS.
func tlsDoctorLine(cfg Config, simulated bool) string {
	certFile := cfg.TLSCert
	if certFile == "" {
		if simulated && isLoopback(cfg.Listen) {
			return "off (plain HTTP: set tls_cert and tls_key)"
		}
		certFile = filepath.Join(cfg.StateDir, tlsconf.CertFileName)
	}
	leaf, err := tlsconf.ReadLeaf(certFile)
	if err != nil {
		if cfg.TLSCert == "" {
			return "self-signed, made at the first start"
		}
		return "MISSING: " + err.Error()
	}
	return fmt.Sprintf("ok (%s, until %s)", tlsconf.Fingerprint(leaf), leaf.NotAfter.Format(time.DateOnly))
}
