package onvif

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/use-go/onvif/event"

	"github.com/osapgw/osapgw/adapters"
	"github.com/osapgw/osapgw/adapters/onvif/soap"
	"github.com/osapgw/osapgw/internal/backoff"
	"github.com/osapgw/osapgw/model"
)

// The event requests the library gets wrong (a misspelt
// "wsnt:sSubscriptionPolicy", an empty filter always sent, no element
// name on Renew and Unsubscribe) are written here.
type createPullPoint struct {
	XMLName                struct{} `xml:"tev:CreatePullPointSubscription"`
	InitialTerminationTime string   `xml:"tev:InitialTerminationTime"`
}

type createPullPointResponse struct {
	SubscriptionReference struct {
		Address string `xml:"Address"`
	} `xml:"SubscriptionReference"`
	CurrentTime     string `xml:"CurrentTime"`
	TerminationTime string `xml:"TerminationTime"`
}

type renew struct {
	XMLName         struct{} `xml:"wsnt:Renew"`
	TerminationTime string   `xml:"wsnt:TerminationTime"`
}

type renewResponse struct {
	TerminationTime string `xml:"TerminationTime"`
	CurrentTime     string `xml:"CurrentTime"`
}

type unsubscribe struct {
	XMLName struct{} `xml:"wsnt:Unsubscribe"`
}

const (
	actionCreatePullPoint = "http://www.onvif.org/ver10/events/wsdl/EventPortType/CreatePullPointSubscriptionRequest"
	actionPull            = "http://www.onvif.org/ver10/events/wsdl/PullPointSubscription/PullMessagesRequest"
	actionRenew           = "http://docs.oasis-open.org/wsn/bw-2/SubscriptionManager/RenewRequest"
	actionUnsubscribe     = "http://docs.oasis-open.org/wsn/bw-2/SubscriptionManager/UnsubscribeRequest"
	// subscriptionTTL is the lifetime asked for; Renew runs when less
	// than renewMargin is left.
	subscriptionTTL = 60 * time.Second
	renewMargin     = 20 * time.Second
)

// subscription is a live PullPoint subscription.
type subscription struct {
	addr string
	// left is how long the subscription has, measured at at.
	left time.Duration
	at   time.Time
	// granted is the lifetime the camera gave at the last subscribe or
	// renew.
	granted time.Duration
}

// remaining is how long the subscription has now.
func (s *subscription) remaining() time.Duration { return time.Until(s.at.Add(s.left)) }

// renewDue reports whether to renew now: when less than renewMargin is
// left, or less than half the granted lifetime for cameras that grant
// little.
func (s *subscription) renewDue() bool {
	return s.remaining() < min(renewMargin, s.granted/2)
}

// lifetime reads the lifetime a camera granted from its current and
// termination times, or fallback when they are missing or inconsistent.
func lifetime(current, termination string, fallback time.Duration) time.Duration {
	cur, err1 := parseTime(current)
	term, err2 := parseTime(termination)
	if err1 != nil || err2 != nil || !term.After(cur) {
		return fallback
	}
	return term.Sub(cur)
}

func (k *camera) do(ctx context.Context, name, addr, action string, req, resp any) error {
	if err := k.c.Do(ctx, soap.Request{URL: addr, Body: req, Action: action, Addressing: true}, resp); err != nil {
		return &callError{Call: name, Err: err}
	}
	return nil
}

func (k *camera) subscribe(ctx context.Context, rewrite bool) (*subscription, error) {
	var r createPullPointResponse
	req := createPullPoint{InitialTerminationTime: "PT" + strconv.Itoa(int(subscriptionTTL.Seconds())) + "S"}
	if err := k.do(ctx, "CreatePullPointSubscription", k.svc.Events, actionCreatePullPoint, req, &r); err != nil {
		return nil, err
	}
	addr := firstAddr(r.SubscriptionReference.Address)
	if addr == "" {
		return nil, &callError{Call: "CreatePullPointSubscription", Err: errors.New("no subscription address")}
	}
	if rewrite {
		addr = rewriteHost(addr, k.base)
	}
	life := lifetime(r.CurrentTime, r.TerminationTime, subscriptionTTL)
	return &subscription{addr: addr, at: time.Now(), left: life, granted: life}, nil
}

// events keeps a PullPoint subscription and reports what it brings until
// ctx ends. A failed subscription is dropped and made again with backoff;
// it returns an error only when the camera cannot be reached at all.
func (a *Adapter) events(ctx context.Context, k *camera, sink adapters.Sink) error {
	seen := a.seen
	// Delays within [0.25 s, 0.5 s], then [0.5 s, 1 s], … up to 30 s.
	bo := backoff.Backoff{Min: 250 * time.Millisecond, Max: 30 * time.Second, Jitter: true}
	for {
		sub, err := k.subscribe(ctx, a.cfg.hostRewrite())
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !isFault(err) {
				return err
			}
			a.log.Warn("event subscription refused", "err", err)
			if !backoff.Sleep(ctx, bo.Next()) {
				return nil
			}
			continue
		}
		err = a.pull(ctx, k, sub, seen, sink, &bo)
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		_ = k.do(uctx, "Unsubscribe", sub.addr, actionUnsubscribe, unsubscribe{}, nil) // best effort: it may be gone already
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		a.log.Info("event subscription lost; subscribing again", "err", err)
		if !backoff.Sleep(ctx, bo.Next()) {
			return nil
		}
	}
}

// pull runs the PullMessages loop of one subscription, renewing it before
// it terminates, until it fails or ctx ends.
func (a *Adapter) pull(ctx context.Context, k *camera, sub *subscription, seen *dedup, sink adapters.Sink, bo *backoff.Backoff) error {
	wait := min(a.cfg.Timeout/2, 10*time.Second)
	offset := k.c.ClockOffset()
	for {
		if sub.renewDue() {
			var r renewResponse
			req := renew{TerminationTime: "PT" + strconv.Itoa(int(subscriptionTTL.Seconds())) + "S"}
			if err := k.do(ctx, "Renew", sub.addr, actionRenew, req, &r); err != nil {
				return err
			}
			life := lifetime(r.CurrentTime, r.TerminationTime, subscriptionTTL)
			sub.at, sub.left, sub.granted = time.Now(), life, life
		}
		// Never wait past the point where the subscription needs renewing.
		w := max(min(wait, sub.remaining()/2), 100*time.Millisecond)
		var x pullXML
		req := event.PullMessages{Timeout: xsDuration(w), MessageLimit: 100}
		if err := k.do(ctx, "PullMessages", sub.addr, actionPull, req, &x); err != nil {
			return err
		}
		res, err := x.result()
		if err != nil {
			return &callError{Call: "PullMessages", Err: err}
		}
		if res.Termination.After(res.Current) {
			sub.at, sub.left = time.Now(), res.Termination.Sub(res.Current)
		}
		bo.Reset()
		for _, n := range res.Messages {
			name, params := a.topics.classify(n)
			resource := a.resourceFor(k, name, n)
			if !seen.keep(n, name, resource, params) {
				continue
			}
			at := time.Now()
			if !n.UTC.IsZero() {
				at = n.UTC.Add(-offset)
			}
			sink.Event(a.id, model.EventOccurrence{Resource: resource, Event: name, Params: params, At: at, Picture: a.pictureFor(k, resource, name, params)})
		}
	}
}

// resourceFor finds the resource a notification belongs to: the video
// profile of its video source when it names one, else the device.
func (a *Adapter) resourceFor(k *camera, event string, n Notification) string {
	if event == EventDigitalInput || event == EventGeneric {
		return resDevice
	}
	for _, key := range sourceKeys {
		v, ok := n.Source[key]
		if !ok {
			continue
		}
		for i, p := range k.profiles {
			if p.VSCToken == v || p.SourceToken == v {
				return resVideo + strconv.Itoa(i+1)
			}
		}
	}
	if len(k.profiles) > 0 {
		return resVideo + "1"
	}
	return resDevice
}
