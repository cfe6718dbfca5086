package nexmark

import "time"

// Person is a new person registering with the auction site (the reference's
// Person / "newPerson" event).
type Person struct {
	// ID is the person's id, starting at FirstPersonID and increasing by
	// one with every person event.
	ID int64 `json:"id"`
	// Name is a first name and a last name from small fixed lists.
	Name string `json:"name"`
	// EmailAddress is a random address such as "abc de@fgh.com".
	EmailAddress string `json:"emailAddress"`
	// CreditCard is four groups of four digits separated by spaces.
	CreditCard string `json:"creditCard"`
	// City is one of ten US cities.
	City string `json:"city"`
	// State is one of six US state codes.
	State string `json:"state"`
	// DateTime is the event time, with millisecond precision, in UTC.
	DateTime time.Time `json:"dateTime"`
	// Extra pads the event to the configured average person size.
	Extra string `json:"extra"`
}

// Auction is a new auction opened by a seller (the reference's Auction /
// "newAuction" event).
type Auction struct {
	// ID is the auction's id, starting at FirstAuctionID and increasing by
	// one with every auction event.
	ID int64 `json:"id"`
	// ItemName is a random string of at most 20 characters.
	ItemName string `json:"itemName"`
	// Description is a random string of at most 100 characters.
	Description string `json:"description"`
	// InitialBid is the opening price, in cents.
	InitialBid int64 `json:"initialBid"`
	// Reserve is the reserve price, in cents; it is at least InitialBid.
	Reserve int64 `json:"reserve"`
	// DateTime is the event time, with millisecond precision, in UTC.
	DateTime time.Time `json:"dateTime"`
	// Expires is when the auction closes; it is after DateTime.
	Expires time.Time `json:"expires"`
	// Seller is the id of the selling person.
	Seller int64 `json:"seller"`
	// Category is in [FirstCategoryID, FirstCategoryID+NumCategories).
	Category int64 `json:"category"`
	// Extra pads the event to the configured average auction size.
	Extra string `json:"extra"`
}

// Bid is a bid on an auction (the reference's Bid event).
type Bid struct {
	// Auction is the id of the auction bid on.
	Auction int64 `json:"auction"`
	// Bidder is the id of the bidding person.
	Bidder int64 `json:"bidder"`
	// Price is the bid, in cents.
	Price int64 `json:"price"`
	// Channel is where the bid came from: one of four hot channels
	// ("Google", "Facebook", "Baidu", "Apple") or "channel-N".
	Channel string `json:"channel"`
	// URL is the page the bid was made on.
	URL string `json:"url"`
	// DateTime is the event time, with millisecond precision, in UTC.
	DateTime time.Time `json:"dateTime"`
	// Extra pads the event to the configured average bid size.
	Extra string `json:"extra"`
}

// EventKind says which of the three Nexmark event types an Event holds. Its
// values are the reference's event_type column: 0 person, 1 auction, 2 bid.
type EventKind uint8

// The event kinds.
const (
	KindPerson  EventKind = 0
	KindAuction EventKind = 1
	KindBid     EventKind = 2
	// KindNone is the kind of the zero Event, which holds nothing.
	KindNone EventKind = 255
)

// String returns "person", "auction", "bid" or "none".
func (k EventKind) String() string {
	switch k {
	case KindPerson:
		return "person"
	case KindAuction:
		return "auction"
	case KindBid:
		return "bid"
	}
	return "none"
}

// Event is one element of the Nexmark stream. Exactly one of Person,
// Auction and Bid is set; the zero Event holds none and is never generated.
type Event struct {
	// Person is set for a new person.
	Person *Person
	// Auction is set for a new auction.
	Auction *Auction
	// Bid is set for a bid.
	Bid *Bid
}

// Kind returns which event type e holds.
func (e Event) Kind() EventKind {
	switch {
	case e.Bid != nil:
		return KindBid
	case e.Auction != nil:
		return KindAuction
	case e.Person != nil:
		return KindPerson
	}
	return KindNone
}

// EventTime returns the event's timestamp: the DateTime of whichever
// record it holds, or the zero time for the zero Event.
func (e Event) EventTime() time.Time {
	switch {
	case e.Bid != nil:
		return e.Bid.DateTime
	case e.Auction != nil:
		return e.Auction.DateTime
	case e.Person != nil:
		return e.Person.DateTime
	}
	return time.Time{}
}

// UnixMilli returns EventTime as milliseconds since the Unix epoch, the
// resolution at which events are generated.
func (e Event) UnixMilli() int64 {
	return e.EventTime().UnixMilli()
}
