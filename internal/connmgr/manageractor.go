package connmgr

import (
	"github.com/securestreams/ss/actor"
)

// managerActor owns the map from broker identity to connection actor. Its
// children are the connection actors (connActor), supervised one for one:
// a child that panics is restarted (see maxRestarts).
type managerActor struct {
	m     *Manager
	conns map[Identity]*entry // identities with a connection actor that takes attachments
	byPID map[string]*entry   // every live child, by PID id
}

// entry is one connection actor as the manager sees it.
type entry struct {
	id       Identity
	settings Settings // of the stream that opened it; immutable
	pid      *actor.PID
	sent     uint64 // attach requests forwarded to the child (manager-owned)
}

// waiter is one Attach in progress.
type waiter struct {
	reply chan attachReply // cap 1; answered once
	child *actor.PID       // manager-owned: where the request was forwarded
	att   *Attachment      // connection-actor-owned: the attachment handed out
}

type attachReply struct {
	a   *Attachment
	err error
}

// Messages to the manager actor.
type (
	mAttach struct {
		req Request
		w   *waiter
	}
	mCancel struct{ w *waiter }
	mCheck  struct {
		id    Identity
		s     Settings
		reply chan error
	}
	// mIdle: the child's last attachment left after gen attach requests.
	mIdle struct {
		e   *entry
		gen uint64
	}
	mPanic struct {
		id    Identity
		reply chan bool
	}
)

// Receive is the manager actor's behaviour.
func (ma *managerActor) Receive(c actor.Context) {
	switch msg := c.Message().(type) {
	case mAttach:
		ma.attach(c, msg)
	case mCancel:
		if msg.w.child != nil {
			c.Send(msg.w.child, cCancel(msg))
		}
	case mCheck:
		var err error
		if e := ma.conns[msg.id]; e != nil {
			err = compare(e.settings, msg.s, msg.id)
		}
		msg.reply <- err
	case mIdle:
		// No attach request is on its way to the child: it may go.
		if e := ma.conns[msg.e.id]; e == msg.e && e.sent == msg.gen {
			delete(ma.conns, e.id)
			c.Send(e.pid, cShutdown{})
		}
	case mPanic:
		e := ma.conns[msg.id]
		if e != nil {
			c.Send(e.pid, cPanic{})
		}
		msg.reply <- e != nil
	case *actor.Terminated:
		if e := ma.byPID[msg.Who.Id]; e != nil {
			delete(ma.byPID, msg.Who.Id)
			if ma.conns[e.id] == e {
				delete(ma.conns, e.id)
			}
		}
	case *actor.Stopped:
		ma.m.sys.Forget(c.Self())
		ma.m.stopOnce.Do(func() { close(ma.m.stopped) })
	}
}

func (ma *managerActor) attach(c actor.Context, msg mAttach) {
	m := ma.m
	select {
	case <-m.closing:
		msg.w.reply <- attachReply{err: ErrClosed}
		return
	default:
	}
	id := msg.req.Identity
	e := ma.conns[id]
	if e != nil {
		if err := compare(e.settings, msg.req.Settings, id); err != nil {
			msg.w.reply <- attachReply{err: err}
			return
		}
	} else {
		e = &entry{id: id, settings: msg.req.Settings}
		ca := &connActor{m: m, e: e, gone: make(chan struct{}), dial: msg.req.Dial, settings: msg.req.Settings, atts: map[*Attachment]struct{}{}, filters: map[string]int{}}
		pid, err := actor.SpawnChild(c, actor.PropsFromReceiver(ca), "conn-")
		if err != nil {
			msg.w.reply <- attachReply{err: err}
			return
		}
		e.pid = pid
		ma.conns[id] = e
		ma.byPID[pid.Id] = e
	}
	e.sent++
	msg.w.child = e.pid
	c.Send(e.pid, cAttach{w: msg.w, dial: msg.req.Dial, settings: msg.req.Settings})
}
