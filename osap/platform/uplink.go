package platform

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/osapgw/osapgw/osap"
)

// uplinkTypes lists the message types each up topic kind carries.
var uplinkTypes = map[string][]string{
	osap.KindTopo:      {osap.TypeTopoAdd, osap.TypeTopoRemove, osap.TypeSubOnline, osap.TypeSubOffline},
	osap.KindAttribute: {osap.TypeAttributeReport},
	osap.KindEvent:     {osap.TypeEventReport},
	osap.KindReply:     {osap.TypeReply},
	osap.KindStatus:    {osap.TypeStatus},
}

func typeAllowed(kind, typ string) bool {
	for _, t := range uplinkTypes[kind] {
		if t == typ {
			return true
		}
	}
	return false
}

// errNotCurrent is returned by uplink for a message that arrives on a
// connection a newer one of the same device has taken over: it is not
// acknowledged, so the device sends it again on the new connection.
var errNotCurrent = errors.New("connection taken over")

// uplink opens and handles one message a device published. Messages that
// cannot be opened or make no sense are logged and dropped (acknowledged:
// sending them again would not help). It returns an error when the message
// must stay unacknowledged: an event that could not be stored, or
// errNotCurrent.
func (d *DAS) uplink(srv *mqtt.Server, cl *mqtt.Client, topic string, payload []byte) error {
	c := d.current(cl)
	if c == nil {
		return errNotCurrent
	}
	_, _, kind, err := osap.ParseTopic(topic)
	if err != nil {
		d.log.Warn("uplink dropped", "devid", c.devID, "topic", topic, "err", err)
		return nil
	}
	var msg osap.Message
	for _, ci := range c.ciphers {
		if msg, err = ci.OpenMessage(topic, payload); err == nil {
			break
		}
	}
	if err != nil {
		d.log.Warn("uplink dropped", "devid", c.devID, "topic", topic, "err", err)
		return nil
	}
	return d.handle(srv, c, kind, msg)
}

// handle applies one opened uplink of c on the topic kind. srv answers
// topo.add; nil sends no answer.
func (d *DAS) handle(srv *mqtt.Server, c *conn, kind string, msg osap.Message) error {
	if !typeAllowed(kind, msg.Type) {
		d.log.Warn("uplink dropped: type does not belong on the topic", "devid", c.devID, "kind", kind, "type", msg.Type)
		return nil
	}
	now := d.now()
	switch kind {
	case osap.KindEvent:
		return d.event(c, msg, now)
	case osap.KindTopo:
		d.topo(srv, c, msg, now)
	case osap.KindAttribute:
		var rep osap.AttributeReport
		if err := msg.DecodeBody(&rep); err != nil {
			d.log.Warn("attribute report dropped", "devid", c.devID, "dev", msg.Dev, "err", err)
			return nil
		}
		d.mu.Lock()
		dev := d.device(c.devID)
		dev.lastSeen = now
		if msg.Dev == "" {
			dev.attrs.set(rep.Resource, rep.Values)
		} else {
			s := dev.sub(msg.Dev)
			s.attrs.set(rep.Resource, rep.Values)
			s.updated = now
		}
		d.mu.Unlock()
	case osap.KindReply:
		d.mu.Lock()
		d.device(c.devID).lastSeen = now
		ch := d.pending[pendingKey{c.devID, msg.ID}]
		d.mu.Unlock()
		if ch == nil {
			d.log.Debug("reply to no pending request", "devid", c.devID, "id", msg.ID, "code", msg.Code)
			return nil
		}
		select {
		case ch <- msg:
		default: // a second reply with the same id
		}
	case osap.KindStatus:
		var st osap.Status
		if err := msg.DecodeBody(&st); err != nil {
			d.log.Warn("status dropped", "devid", c.devID, "err", err)
			return nil
		}
		d.mu.Lock()
		dev := d.device(c.devID)
		dev.lastSeen = now
		dev.statusOnline = st.Online
		d.mu.Unlock()
		d.log.Info("device status", "devid", c.devID, "online", st.Online)
	}
	return nil
}

// sub returns sub-device id's entry, creating it. d.mu must be held.
func (dev *device) sub(id string) *subDevice {
	s := dev.subs[id]
	if s == nil {
		s = &subDevice{attrs: attributes{}}
		dev.subs[id] = s
	}
	return s
}

func (d *DAS) event(c *conn, msg osap.Message, now time.Time) error {
	if msg.ID == "" {
		d.log.Warn("event dropped: no id", "devid", c.devID, "dev", msg.Dev)
		return nil
	}
	ev := Event{DevID: c.devID, ID: msg.ID, Dev: msg.Dev, Body: msg.Body, Captured: time.UnixMilli(msg.TS), Received: now}
	var rep osap.EventReport
	if len(msg.Body) > 0 && json.Unmarshal(msg.Body, &rep) == nil {
		ev.Resource, ev.Name = rep.Resource, rep.Event
		ev.Pictures, ev.PictureError = rep.Pictures, rep.PictureError
		if rep.TS != 0 {
			ev.Captured = time.UnixMilli(rep.TS)
		}
	} else {
		d.log.Warn("event body is not an event occurrence; stored as is", "devid", c.devID, "id", msg.ID)
	}
	stored, added, err := d.events.Add(ev)
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.device(c.devID).lastSeen = now
	d.mu.Unlock()
	if added {
		d.log.Debug("event stored", "devid", c.devID, "id", msg.ID, "seq", stored.Seq, "dev", msg.Dev, "event", ev.Name)
	} else {
		d.log.Debug("duplicate event", "devid", c.devID, "id", msg.ID, "seq", stored.Seq)
	}
	return nil
}

// topo applies topo.add, topo.remove, sub.online and sub.offline, and
// answers topo.add with a topo.reply carrying the same id.
func (d *DAS) topo(srv *mqtt.Server, c *conn, msg osap.Message, now time.Time) {
	var (
		add  osap.TopoAdd
		list osap.DeviceList
		err  error
	)
	if msg.Type == osap.TypeTopoAdd {
		err = msg.DecodeBody(&add)
	} else {
		err = msg.DecodeBody(&list)
	}
	if err != nil {
		d.log.Warn("topology message dropped", "devid", c.devID, "type", msg.Type, "err", err)
		if msg.Type == osap.TypeTopoAdd {
			d.topoReply(srv, c, msg.ID, osap.CodeBadRequest, err.Error(), nil)
		}
		return
	}
	var (
		accepted []string
		errs     []error
	)
	d.mu.Lock()
	dev := d.device(c.devID)
	dev.lastSeen = now
	switch msg.Type {
	case osap.TypeTopoAdd:
		for i := range add.Devices {
			m := add.Devices[i]
			if err := m.Validate(); err != nil {
				errs = append(errs, err)
				continue
			}
			s := dev.sub(m.ID)
			s.model = &m
			s.online = true
			s.updated = now
			accepted = append(accepted, m.ID)
		}
	case osap.TypeTopoRemove:
		for _, id := range list.Devices {
			delete(dev.subs, id)
		}
	case osap.TypeSubOnline, osap.TypeSubOffline:
		for _, id := range list.Devices {
			s := dev.sub(id)
			s.online = msg.Type == osap.TypeSubOnline
			s.updated = now
		}
	}
	d.mu.Unlock()
	d.log.Info("topology", "devid", c.devID, "type", msg.Type, "devices", len(add.Devices)+len(list.Devices))
	if msg.Type != osap.TypeTopoAdd {
		return
	}
	code, text := osap.CodeOK, ""
	if len(errs) > 0 {
		code, text = osap.CodeBadRequest, errors.Join(errs...).Error()
		d.log.Warn("topo.add: sub-devices refused", "devid", c.devID, "err", text)
	}
	d.topoReply(srv, c, msg.ID, code, text, accepted)
}

func (d *DAS) topoReply(srv *mqtt.Server, c *conn, id string, code int, text string, accepted []string) {
	if srv == nil {
		return
	}
	topic := osap.Topic(c.devID, osap.DirDown, osap.KindTopo)
	if accepted == nil {
		accepted = []string{}
	}
	h := osap.Header{ID: id, TS: d.now().UnixMilli(), Type: osap.TypeTopoReply, Code: code, Msg: text}
	payload, err := c.ciphers[0].SealMessage(rand.Reader, topic, h, osap.DeviceList{Devices: accepted})
	if err == nil {
		err = srv.Publish(topic, payload, false, 1)
	}
	if err != nil {
		d.log.Warn("topo.reply not sent", "devid", c.devID, "id", id, "err", err)
	}
}
