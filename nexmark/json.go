package nexmark

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// SQLTimeLayout is the time.Format layout of timestamps in the JSON form.
const SQLTimeLayout = "2006-01-02 15:04:05.999"

// AppendJSON appends the JSON form of e, without a newline, to dst.
func (e Event) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"event_type":`...)
	switch {
	case e.Bid != nil:
		dst = append(dst, `2,"person":null,"auction":null,"bid":`...)
		dst = e.Bid.AppendJSON(dst)
	case e.Auction != nil:
		dst = append(dst, `1,"person":null,"auction":`...)
		dst = e.Auction.AppendJSON(dst)
		dst = append(dst, `,"bid":null`...)
	case e.Person != nil:
		dst = append(dst, `0,"person":`...)
		dst = e.Person.AppendJSON(dst)
		dst = append(dst, `,"auction":null,"bid":null`...)
	default:
		dst = append(dst, `null,"person":null,"auction":null,"bid":null`...)
	}
	return append(dst, '}')
}

// AppendJSON appends the JSON object of p to dst.
func (p Person) AppendJSON(dst []byte) []byte {
	dst = appendIntField(dst, `{"id":`, p.ID)
	dst = appendStringField(dst, `,"name":`, p.Name)
	dst = appendStringField(dst, `,"emailAddress":`, p.EmailAddress)
	dst = appendStringField(dst, `,"creditCard":`, p.CreditCard)
	dst = appendStringField(dst, `,"city":`, p.City)
	dst = appendStringField(dst, `,"state":`, p.State)
	dst = appendTimeField(dst, `,"dateTime":`, p.DateTime)
	dst = appendStringField(dst, `,"extra":`, p.Extra)
	return append(dst, '}')
}

// AppendJSON appends the JSON object of a to dst.
func (a Auction) AppendJSON(dst []byte) []byte {
	dst = appendIntField(dst, `{"id":`, a.ID)
	dst = appendStringField(dst, `,"itemName":`, a.ItemName)
	dst = appendStringField(dst, `,"description":`, a.Description)
	dst = appendIntField(dst, `,"initialBid":`, a.InitialBid)
	dst = appendIntField(dst, `,"reserve":`, a.Reserve)
	dst = appendTimeField(dst, `,"dateTime":`, a.DateTime)
	dst = appendTimeField(dst, `,"expires":`, a.Expires)
	dst = appendIntField(dst, `,"seller":`, a.Seller)
	dst = appendIntField(dst, `,"category":`, a.Category)
	dst = appendStringField(dst, `,"extra":`, a.Extra)
	return append(dst, '}')
}

// AppendJSON appends the JSON object of b to dst.
func (b Bid) AppendJSON(dst []byte) []byte {
	dst = appendIntField(dst, `{"auction":`, b.Auction)
	dst = appendIntField(dst, `,"bidder":`, b.Bidder)
	dst = appendIntField(dst, `,"price":`, b.Price)
	dst = appendStringField(dst, `,"channel":`, b.Channel)
	dst = appendStringField(dst, `,"url":`, b.URL)
	dst = appendTimeField(dst, `,"dateTime":`, b.DateTime)
	dst = appendStringField(dst, `,"extra":`, b.Extra)
	return append(dst, '}')
}

func appendIntField(dst []byte, key string, v int64) []byte {
	return strconv.AppendInt(append(dst, key...), v, 10)
}

func appendTimeField(dst []byte, key string, t time.Time) []byte {
	dst = append(dst, key...)
	dst = append(dst, '"')
	dst = t.UTC().AppendFormat(dst, SQLTimeLayout)
	return append(dst, '"')
}

const hexDigits = "0123456789abcdef"

func appendStringField(dst []byte, key, s string) []byte {
	dst = append(dst, key...)
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// MarshalJSON returns the JSON form of e (see the package documentation).
// Note that json.Marshal HTML-escapes it ('&' in URLs becomes \u0026);
// AppendJSON and Encoder write the reference's bytes exactly.
func (e Event) MarshalJSON() ([]byte, error) {
	if e.Kind() == KindNone {
		return nil, errors.New("nexmark: marshaling an empty Event")
	}
	return e.AppendJSON(nil), nil
}

// MarshalJSON returns the JSON object of p.
func (p Person) MarshalJSON() ([]byte, error) { return p.AppendJSON(nil), nil }

// MarshalJSON returns the JSON object of a.
func (a Auction) MarshalJSON() ([]byte, error) { return a.AppendJSON(nil), nil }

// MarshalJSON returns the JSON object of b.
func (b Bid) MarshalJSON() ([]byte, error) { return b.AppendJSON(nil), nil }

// UnmarshalJSON parses the JSON form of an event. The record matching
// event_type must be present and the others null or absent; event_type may
// be omitted when exactly one record is present.
func (e *Event) UnmarshalJSON(data []byte) error {
	if ev, ok := decodeFast(data); ok {
		*e = ev
		return nil
	}
	return e.unmarshalSlow(data)
}

func errEventRecords(set int) error {
	return fmt.Errorf("nexmark: event has %d of person, auction and bid; want exactly 1", set)
}

func errEventType(t int, k EventKind) error {
	return fmt.Errorf("nexmark: event_type %d does not match the %s record", t, k)
}

// jsonTime reads a timestamp written in the SQL form ("2006-01-02
// 15:04:05.999"), as RFC 3339 / ISO-8601 (with or without a zone, UTC
// assumed), or as a number of milliseconds since the epoch (how the Beam
// reference's Jackson writes its Instants).
type jsonTime time.Time

func (t *jsonTime) UnmarshalJSON(data []byte) error {
	if bytes.Equal(data, []byte("null")) {
		*t = jsonTime{}
		return nil
	}
	if len(data) > 0 && data[0] != '"' {
		ms, err := strconv.ParseInt(string(data), 10, 64)
		if err != nil {
			return fmt.Errorf("nexmark: bad timestamp %s", data)
		}
		*t = jsonTime(msTime(ms))
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	for _, layout := range []string{"2006-01-02 15:04:05.999999999", time.RFC3339Nano, "2006-01-02T15:04:05.999999999"} {
		if v, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			*t = jsonTime(v.UTC())
			return nil
		}
	}
	return fmt.Errorf("nexmark: bad timestamp %q", s)
}

// UnmarshalJSON parses the JSON object of a person.
func (p *Person) UnmarshalJSON(data []byte) error {
	var aux struct {
		ID           int64    `json:"id"`
		Name         string   `json:"name"`
		EmailAddress string   `json:"emailAddress"`
		CreditCard   string   `json:"creditCard"`
		City         string   `json:"city"`
		State        string   `json:"state"`
		DateTime     jsonTime `json:"dateTime"`
		Extra        string   `json:"extra"`
	}
	if err := json.Unmarshal(data, &aux); err != nil {
		return err
	}
	*p = Person{aux.ID, aux.Name, aux.EmailAddress, aux.CreditCard, aux.City, aux.State, time.Time(aux.DateTime), aux.Extra}
	return nil
}

// UnmarshalJSON parses the JSON object of an auction.
func (a *Auction) UnmarshalJSON(data []byte) error {
	var aux struct {
		ID          int64    `json:"id"`
		ItemName    string   `json:"itemName"`
		Description string   `json:"description"`
		InitialBid  int64    `json:"initialBid"`
		Reserve     int64    `json:"reserve"`
		DateTime    jsonTime `json:"dateTime"`
		Expires     jsonTime `json:"expires"`
		Seller      int64    `json:"seller"`
		Category    int64    `json:"category"`
		Extra       string   `json:"extra"`
	}
	if err := json.Unmarshal(data, &aux); err != nil {
		return err
	}
	*a = Auction{aux.ID, aux.ItemName, aux.Description, aux.InitialBid, aux.Reserve,
		time.Time(aux.DateTime), time.Time(aux.Expires), aux.Seller, aux.Category, aux.Extra}
	return nil
}

// UnmarshalJSON parses the JSON object of a bid.
func (b *Bid) UnmarshalJSON(data []byte) error {
	var aux struct {
		Auction  int64    `json:"auction"`
		Bidder   int64    `json:"bidder"`
		Price    int64    `json:"price"`
		Channel  string   `json:"channel"`
		URL      string   `json:"url"`
		DateTime jsonTime `json:"dateTime"`
		Extra    string   `json:"extra"`
	}
	if err := json.Unmarshal(data, &aux); err != nil {
		return err
	}
	*b = Bid{aux.Auction, aux.Bidder, aux.Price, aux.Channel, aux.URL, time.Time(aux.DateTime), aux.Extra}
	return nil
}

// Encoder writes events as JSON lines: one JSON object per line, each
// terminated by '\n'.
type Encoder struct {
	w   io.Writer
	buf []byte
}

// NewEncoder returns an Encoder writing to w. It makes one Write call per
// Encode call and does no other buffering.
func NewEncoder(w io.Writer) *Encoder {
	return &Encoder{w: w}
}

// Encode writes the events, one line each. It rejects the zero Event.
func (enc *Encoder) Encode(events ...Event) error {
	b := enc.buf[:0]
	for i := range events {
		if events[i].Kind() == KindNone {
			return errors.New("nexmark: encoding an empty Event")
		}
		b = events[i].AppendJSON(b)
		b = append(b, '\n')
	}
	if cap(b) <= 1<<20 {
		enc.buf = b
	}
	_, err := enc.w.Write(b)
	return err
}

// WriteJSONLines writes the events to w as JSON lines.
func WriteJSONLines(w io.Writer, events ...Event) error {
	return NewEncoder(w).Encode(events...)
}
