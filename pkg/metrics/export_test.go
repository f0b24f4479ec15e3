package metrics

import (
	"regexp"

	"github.com/prometheus/client_golang/prometheus"
)

var descName = regexp.MustCompile(`fqName: "([^"]+)"`)

// OwnNames returns the names of every tollgate_ metric p registers, whether
// or not anything was recorded yet (a vector without children is not
// gathered).
func (p *Prometheus) OwnNames() []string {
	ch := make(chan *prometheus.Desc, 16)
	go func() {
		for _, c := range p.own {
			c.Describe(ch)
		}
		close(ch)
	}()
	var names []string
	for d := range ch {
		// Desc keeps its name private; its String form is stable.
		if m := descName.FindStringSubmatch(d.String()); m != nil {
			names = append(names, m[1])
		}
	}
	return names
}
