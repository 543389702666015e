package bridge

import (
	"slices"

	"github.com/osapgw/osapgw/model"
	"github.com/osapgw/osapgw/osap"
)

// recordAnnouncedLocked stores the configured device ids once no removal
// is waiting to be sent.
func (b *Bridge) recordAnnouncedLocked() {
	tp, ok := b.vals.(topologyStore)
	if !ok || len(b.removed) > 0 {
		return
	}
	if err := tp.SetAnnounced(append([]string(nil), b.order...)); err != nil {
		b.log.Warn("record the announced sub-devices", "err", err)
	}
}

// forgottenLocked adds to b.removed the devices the platform was told
// about before and that are no longer configured.
func (b *Bridge) forgottenLocked() {
	tp, ok := b.vals.(topologyStore)
	if !ok {
		return
	}
	prev, err := tp.Announced()
	if err != nil {
		b.log.Warn("read the announced sub-devices", "err", err)
		return
	}
	for _, id := range prev {
		if _, configured := b.devices[id]; configured || slices.Contains(b.removed, id) {
			continue
		}
		b.removed = append(b.removed, id)
	}
}

func (b *Bridge) sendRemovedLocked() {
	ids := b.removed
	b.removed = nil
	err := b.publish(osap.KindTopo, osap.Header{Type: osap.TypeTopoRemove}, osap.DeviceList{Devices: ids}, 1, func(err error) {
		if err != nil {
			b.mu.Lock()
			b.removed = append(b.removed, ids...)
			b.mu.Unlock()
		}
	})
	if err != nil {
		b.removed = append(b.removed, ids...)
	}
}

// Status implements adapters.Sink.
func (b *Bridge) Status(dev string, online bool, err error) {
	d := b.device(dev)
	if d == nil {
		return
	}
	if !d.setOnline(online, err) {
		return
	}
	if online {
		b.log.Info("device online", "device", dev)
	} else {
		b.log.Warn("device offline", "device", dev, "err", err)
	}
	if b.up.Connected() {
		typ := osap.TypeSubOffline
		if online {
			typ = osap.TypeSubOnline
		}
		_ = b.publish(osap.KindTopo, osap.Header{Type: typ}, osap.DeviceList{Devices: []string{dev}}, 1, nil)
	}
}

// sendTopology announces every described device (topo.add in batches),
// then their online state, then devices removed while away.
func (b *Bridge) sendTopology() {
	b.mu.Lock()
	var models []model.Device
	var online, offline []string
	for _, id := range b.order {
		d := b.devices[id]
		m, ok := d.model()
		if !ok {
			continue // announced when its Describe succeeds
		}
		models = append(models, m)
		if d.isOnline() {
			online = append(online, id)
		} else {
			offline = append(offline, id)
		}
	}
	b.forgottenLocked()
	if len(b.removed) > 0 {
		b.sendRemovedLocked()
	}
	b.recordAnnouncedLocked()
	b.mu.Unlock()
	for i := 0; i < len(models); i += b.cfg.TopoBatch {
		batch := models[i:min(i+b.cfg.TopoBatch, len(models))]
		if err := b.publish(osap.KindTopo, osap.Header{Type: osap.TypeTopoAdd}, osap.TopoAdd{Devices: batch}, 1, nil); err != nil {
			return
		}
	}
	if len(online) > 0 {
		_ = b.publish(osap.KindTopo, osap.Header{Type: osap.TypeSubOnline}, osap.DeviceList{Devices: online}, 1, nil)
	}
	if len(offline) > 0 {
		_ = b.publish(osap.KindTopo, osap.Header{Type: osap.TypeSubOffline}, osap.DeviceList{Devices: offline}, 1, nil)
	}
}

// announce sends one device's model after it was described while the
// session was up.
func (b *Bridge) announce(m model.Device) {
	if !b.up.Connected() {
		return
	}
	_ = b.publish(osap.KindTopo, osap.Header{Type: osap.TypeTopoAdd}, osap.TopoAdd{Devices: []model.Device{m}}, 1, nil)
}
