package nexmark

import (
	"encoding/json"
	"time"
	"unicode/utf8"
)

// DecodeJSON parses the JSON form of an event, as json.Unmarshal into an
// Event does, an order of magnitude faster for the form AppendJSON
// writes: the keys in its order, no spaces, strings without escapes,
// timestamps in SQLTimeLayout. Anything else, valid or not, is left to
// json.Unmarshal: the result and the error are the same either way (a
// fuzz test holds them to it).
func DecodeJSON(data []byte) (Event, error) {
	if e, ok := decodeFast(data); ok {
		return e, nil
	}
	var e Event
	err := json.Unmarshal(data, &e)
	return e, err
}

// unmarshalSlow is UnmarshalJSON without its fast path, the reference
// decodeFast is fuzzed against.
func (e *Event) unmarshalSlow(data []byte) error {
	var aux struct {
		EventType *int     `json:"event_type"`
		Person    *Person  `json:"person"`
		Auction   *Auction `json:"auction"`
		Bid       *Bid     `json:"bid"`
	}
	if err := json.Unmarshal(data, &aux); err != nil {
		return err
	}
	ev := Event{Person: aux.Person, Auction: aux.Auction, Bid: aux.Bid}
	set := 0
	for _, ok := range []bool{ev.Person != nil, ev.Auction != nil, ev.Bid != nil} {
		if ok {
			set++
		}
	}
	if set != 1 {
		return errEventRecords(set)
	}
	if aux.EventType != nil && *aux.EventType != int(ev.Kind()) {
		return errEventType(*aux.EventType, ev.Kind())
	}
	*e = ev
	return nil
}

// decodeFast parses exactly the bytes AppendJSON writes for an event; ok
// is false at the first difference.
func decodeFast(data []byte) (e Event, ok bool) {
	s := scanner{b: data, ok: true}
	s.lit(`{"event_type":`)
	if !s.ok || s.i >= len(s.b) {
		return e, false
	}
	kind := s.b[s.i]
	s.i++
	switch kind {
	case '2':
		s.lit(`,"person":null,"auction":null,"bid":`)
		var b Bid
		s.bid(&b)
		e.Bid = &b
	case '1':
		s.lit(`,"person":null,"auction":`)
		var a Auction
		s.auction(&a)
		s.lit(`,"bid":null`)
		e.Auction = &a
	case '0':
		s.lit(`,"person":`)
		var p Person
		s.person(&p)
		s.lit(`,"auction":null,"bid":null`)
		e.Person = &p
	default:
		return e, false
	}
	s.lit(`}`)
	if !s.ok || s.i != len(s.b) {
		return Event{}, false
	}
	return e, true
}

func (s *scanner) bid(b *Bid) {
	s.lit(`{"auction":`)
	b.Auction = s.int()
	s.lit(`,"bidder":`)
	b.Bidder = s.int()
	s.lit(`,"price":`)
	b.Price = s.int()
	s.lit(`,"channel":`)
	b.Channel = s.str()
	s.lit(`,"url":`)
	b.URL = s.str()
	s.lit(`,"dateTime":`)
	b.DateTime = s.time()
	s.lit(`,"extra":`)
	b.Extra = s.str()
	s.lit(`}`)
}

func (s *scanner) auction(a *Auction) {
	s.lit(`{"id":`)
	a.ID = s.int()
	s.lit(`,"itemName":`)
	a.ItemName = s.str()
	s.lit(`,"description":`)
	a.Description = s.str()
	s.lit(`,"initialBid":`)
	a.InitialBid = s.int()
	s.lit(`,"reserve":`)
	a.Reserve = s.int()
	s.lit(`,"dateTime":`)
	a.DateTime = s.time()
	s.lit(`,"expires":`)
	a.Expires = s.time()
	s.lit(`,"seller":`)
	a.Seller = s.int()
	s.lit(`,"category":`)
	a.Category = s.int()
	s.lit(`,"extra":`)
	a.Extra = s.str()
	s.lit(`}`)
}

func (s *scanner) person(p *Person) {
	s.lit(`{"id":`)
	p.ID = s.int()
	s.lit(`,"name":`)
	p.Name = s.str()
	s.lit(`,"emailAddress":`)
	p.EmailAddress = s.str()
	s.lit(`,"creditCard":`)
	p.CreditCard = s.str()
	s.lit(`,"city":`)
	p.City = s.str()
	s.lit(`,"state":`)
	p.State = s.str()
	s.lit(`,"dateTime":`)
	p.DateTime = s.time()
	s.lit(`,"extra":`)
	p.Extra = s.str()
	s.lit(`}`)
}

// scanner reads the pieces of decodeFast's one form; ok turns false at
// the first byte that differs, and every method is then a no-op.
type scanner struct {
	b  []byte
	i  int
	ok bool
}

// lit reads exactly lit.
func (s *scanner) lit(lit string) {
	if !s.ok || len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		s.ok = false
		return
	}
	s.i += len(lit)
}

// int reads a JSON integer of at most 18 digits (no overflow), as
// strconv.AppendInt writes it.
func (s *scanner) int() int64 {
	if !s.ok {
		return 0
	}
	neg := s.i < len(s.b) && s.b[s.i] == '-'
	if neg {
		s.i++
	}
	start := s.i
	var v int64
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		v = v*10 + int64(s.b[s.i]-'0')
		s.i++
	}
	n := s.i - start
	if n == 0 || n > 18 || (n > 1 && s.b[start] == '0') {
		s.ok = false
		return 0
	}
	if neg {
		return -v
	}
	return v
}

// str reads a JSON string of valid UTF-8 (json.Unmarshal replaces
// invalid bytes) with at most the escapes AppendJSON writes: \", \\,
// \n, \r, \t, \b, \f, \/ and \u00XX below 0x80.
func (s *scanner) str() string {
	if !s.ok || s.i >= len(s.b) || s.b[s.i] != '"' {
		s.ok = false
		return ""
	}
	start := s.i + 1
	escaped := false
	for j := start; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			seg := s.b[start:j]
			s.i = j + 1
			if !utf8.Valid(seg) {
				s.ok = false
				return ""
			}
			if escaped {
				return s.unescape(seg)
			}
			return string(seg)
		case c < 0x20:
			s.ok = false
			return ""
		case c == '\\':
			escaped = true
			j++ // the escaped byte is never the closing quote
		}
	}
	s.ok = false
	return ""
}

// unescape decodes seg's escapes (see str).
func (s *scanner) unescape(seg []byte) string {
	out := make([]byte, 0, len(seg))
	for j := 0; j < len(seg); j++ {
		c := seg[j]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		j++
		if j >= len(seg) {
			s.ok = false
			return ""
		}
		switch seg[j] {
		case '"', '\\', '/':
			out = append(out, seg[j])
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'u':
			if j+4 >= len(seg) || seg[j+1] != '0' || seg[j+2] != '0' || unhex(seg[j+3]) > 7 || unhex(seg[j+4]) > 15 {
				s.ok = false
				return ""
			}
			out = append(out, unhex(seg[j+3])<<4|unhex(seg[j+4]))
			j += 4
		default:
			s.ok = false
			return ""
		}
	}
	return string(out)
}

// unhex is the value of a hexadecimal digit, 255 if c is none.
func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10
	}
	return 255
}

// quoted reads a JSON string's bytes without escapes or control
// characters.
func (s *scanner) quoted() []byte {
	if !s.ok || s.i >= len(s.b) || s.b[s.i] != '"' {
		s.ok = false
		return nil
	}
	start := s.i + 1
	for j := start; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			s.i = j + 1
			return s.b[start:j]
		case c < 0x20 || c == '\\':
			s.ok = false
			return nil
		}
	}
	s.ok = false
	return nil
}

// time reads a timestamp in SQLTimeLayout, "2006-01-02 15:04:05" with a
// fraction of 1 to 9 digits or none, in UTC, as jsonTime does; a field
// out of range is left to it.
func (s *scanner) time() time.Time {
	q := s.quoted()
	if !s.ok {
		return time.Time{}
	}
	if len(q) < 19 || q[4] != '-' || q[7] != '-' || q[10] != ' ' || q[13] != ':' || q[16] != ':' {
		s.ok = false
		return time.Time{}
	}
	num := func(b []byte) int {
		v := 0
		for _, c := range b {
			if c < '0' || c > '9' {
				s.ok = false
				return 0
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	y, mo, d := num(q[0:4]), num(q[5:7]), num(q[8:10])
	h, mi, sec := num(q[11:13]), num(q[14:16]), num(q[17:19])
	ns := 0
	if len(q) > 19 {
		frac := q[20:]
		if q[19] != '.' || len(frac) == 0 || len(frac) > 9 {
			s.ok = false
			return time.Time{}
		}
		ns = num(frac)
		for range 9 - len(frac) {
			ns *= 10
		}
	}
	if !s.ok || mo < 1 || mo > 12 || d < 1 || d > daysIn(time.Month(mo), y) || h > 23 || mi > 59 || sec > 59 {
		s.ok = false
		return time.Time{}
	}
	return time.Date(y, time.Month(mo), d, h, mi, sec, ns, time.UTC)
}

// daysIn is the number of days of month m of year y.
func daysIn(m time.Month, y int) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
