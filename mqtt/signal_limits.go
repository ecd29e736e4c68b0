package mqtt

import (
	"sync"
	"sync/atomic"

	"golang.org/x/time/rate"
)

// maxLimitedAccounts bounds the accounts whose buckets are remembered; when full they are all
// forgotten (each then starts with a full bucket, which the total bucket still bounds).
const maxLimitedAccounts = 1024

// accountLimits is a token bucket per viewer account and one for all of them together.
type accountLimits struct {
	rate  rate.Limit
	burst int

	mu       sync.Mutex
	accounts map[string]*rate.Limiter
	total    *rate.Limiter
	limited  atomic.Uint64
}

func newAccountLimits(r rate.Limit, burst, sessions int) *accountLimits {
	return &accountLimits{rate: r, burst: burst, accounts: make(map[string]*rate.Limiter),
		total: rate.NewLimiter(r*rate.Limit(sessions), burst*sessions)}
}

// allow takes a token of the account's bucket and of the total; false (counted) when either
// is empty.
func (l *accountLimits) allow(account string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.accounts[account]
	if b == nil {
		if len(l.accounts) >= maxLimitedAccounts {
			clear(l.accounts)
		}
		b = rate.NewLimiter(l.rate, l.burst)
		l.accounts[account] = b
	}
	if !b.Allow() || !l.total.Allow() {
		l.limited.Add(1)
		return false
	}
	return true
}
