package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"
)

const (
	// watchSetup bounds opening the watch, and the first write's event proving it live.
	watchSetup = 5 * time.Second
	// watchDrain bounds waiting, after the paced window, for answers and events still in flight.
	watchDrain = 5 * time.Second
	// maxOutstanding: beyond this many unanswered writes, due writes are skipped (and counted).
	maxOutstanding = 2000
	// idPrefix: write k registers instance id "w-<k>".
	idPrefix = "w-"
)

// runWatch writes frames[k] open loop at w.PerSecond (k = 1, 2, …; each when it falls due,
// whether or not earlier ones were answered), each timed from its send to the arrival of its
// event on one watch stream. Write 0, sent before the paced window until its event arrives,
// proves the watch is live; it is not counted.
func runWatch(j job, frames [][]byte, deadline time.Duration) result {
	w := j.Watch
	if w.PerSecond < 1 || len(w.IDPath) == 0 {
		return result{Error: "watch: perSecond and idPath are required"}
	}
	writer, err := connFor(j.Target)
	if err != nil {
		return result{Error: err.Error()}
	}
	watcher, err := connFor(w.Target)
	if err != nil {
		return result{Error: err.Error()}
	}
	duration := time.Duration(j.DurationMs) * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), watchSetup+duration+watchDrain+deadline)
	defer cancel()
	desc := &grpc.StreamDesc{StreamName: "watch", ServerStreams: true, ClientStreams: w.ClientStreams}
	stream, err := watcher.NewStream(ctx, desc, w.Method, grpc.ForceCodec(rawCodec{}))
	if err == nil {
		err = stream.SendMsg(w.Request)
	}
	if err == nil && !w.ClientStreams {
		err = stream.CloseSend()
	}
	if err != nil {
		return result{Error: fmt.Sprintf("watch: %s", describe(err))}
	}

	base := time.Now()
	sentAt := make([]atomic.Int64, len(frames)) // ns after base
	var events atomic.Int64
	var latencies []float64 // the receiver's until it is done
	ready, first, ended := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var streamErr error // set before ended is closed
	go func() {
		defer close(ended)
		seen := make([]bool, len(frames))
		isReady := false
		var message []byte
		for {
			if streamErr = stream.RecvMsg(&message); streamErr != nil {
				return
			}
			arrived := time.Since(base).Nanoseconds()
			if !isReady && (w.ReadyField == 0 || boolField(message, w.ReadyField)) {
				isReady = true
				close(ready)
			}
			eachString(message, w.IDPath, func(id []byte) {
				k := sequenceOf(id)
				if k < 0 || k >= len(frames) || seen[k] {
					return
				}
				seen[k] = true
				if k == 0 {
					close(first)
					return
				}
				latencies = append(latencies, float64(arrived-sentAt[k].Load())/1e6)
				events.Add(1)
			})
		}
	}()
	stopWatch := func() {
		cancel()
		<-ended
	}
	wait := func(done <-chan struct{}, what string) error {
		select {
		case <-done:
			return nil
		case <-ended:
			return fmt.Errorf("%s: the stream ended (%s)", what, describe(streamErr))
		case <-time.After(watchSetup):
			return fmt.Errorf("%s within %s", what, watchSetup)
		}
	}
	if err := wait(ready, "the watch was not established"); err != nil {
		stopWatch()
		return result{Error: err.Error()}
	}

	var ok, failed, okInWindow, outstanding atomic.Int64
	var firstError atomic.Value
	var writes sync.WaitGroup
	cpuBefore := cpuSeconds()
	start := time.Now()
	stop := start.Add(duration)
	write := func(k int) bool {
		sentAt[k].Store(time.Since(base).Nanoseconds())
		outstanding.Add(1)
		defer outstanding.Add(-1)
		call, cancelCall := context.WithTimeout(ctx, deadline)
		defer cancelCall()
		var reply []byte
		if err := writer.Invoke(call, j.Method, frames[k], &reply, grpc.ForceCodec(rawCodec{})); err != nil {
			failed.Add(1)
			firstError.CompareAndSwap(nil, describe(err))
			return false
		}
		ok.Add(1)
		return true
	}
	if !write(0) {
		stopWatch()
		return result{Error: fmt.Sprintf("the first write failed: %v", firstError.Load())}
	}
	if err := wait(first, "the first write produced no watch event"); err != nil {
		stopWatch()
		return result{Error: err.Error()}
	}

	issued, skipped := 1, 0
	interval := time.Second / time.Duration(w.PerSecond)
	for {
		now := time.Now()
		if now.After(stop) {
			now = stop
		}
		due := min(len(frames), 1+int(now.Sub(start)/interval))
		for issued < due {
			if outstanding.Load() >= maxOutstanding {
				skipped += due - issued
				issued = due
				break
			}
			writes.Add(1)
			go func(k int) {
				defer writes.Done()
				if write(k) && !time.Now().After(stop) {
					okInWindow.Add(1)
				}
			}(issued)
			issued++
		}
		if !now.Before(stop) || issued >= len(frames) {
			break
		}
		time.Sleep(time.Until(start.Add(time.Duration(issued) * interval)))
	}
	writes.Wait()
	// Events still in flight: every answered write's event, within a bound.
	for drainUntil := time.Now().Add(watchDrain); events.Load() < ok.Load()-1 && time.Now().Before(drainUntil); {
		time.Sleep(10 * time.Millisecond)
	}
	cpu := cpuSeconds() - cpuBefore
	stopWatch() // the receiver has stopped: latencies are ours now
	r := result{
		Ok: ok.Load() - 1, Failed: failed.Load(), Seconds: duration.Seconds(), CPUSeconds: cpu,
		Issued: int64(issued - 1 - skipped), Skipped: int64(skipped), Events: events.Load(),
		Latencies: latencies, Sustained: float64(okInWindow.Load()) / duration.Seconds(),
	}
	if r.Latencies == nil {
		r.Latencies = []float64{}
	}
	if e, isSet := firstError.Load().(string); isSet {
		r.FirstError = e
	}
	return r
}

// sequenceOf is k of an instance id "w-<k>", or -1.
func sequenceOf(id []byte) int {
	if len(id) <= len(idPrefix) || string(id[:len(idPrefix)]) != idPrefix {
		return -1
	}
	k, err := strconv.Atoi(string(id[len(idPrefix):]))
	if err != nil {
		return -1
	}
	return k
}

// eachString calls f with every length-delimited value at path in message: all but the last
// number name embedded messages (each occurrence of a repeated one), the last the value.
func eachString(message []byte, path []protowire.Number, f func([]byte)) {
	for len(message) > 0 {
		number, kind, n := protowire.ConsumeTag(message)
		if n < 0 {
			return
		}
		message = message[n:]
		if kind != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(number, kind, message); n < 0 {
				return
			}
			message = message[n:]
			continue
		}
		value, n := protowire.ConsumeBytes(message)
		if n < 0 {
			return
		}
		message = message[n:]
		if number != path[0] {
			continue
		}
		if len(path) == 1 {
			f(value)
		} else {
			eachString(value, path[1:], f)
		}
	}
}

// boolField says whether message has the bool (varint) field number set to true.
func boolField(message []byte, field protowire.Number) bool {
	for len(message) > 0 {
		number, kind, n := protowire.ConsumeTag(message)
		if n < 0 {
			return false
		}
		message = message[n:]
		if number == field && kind == protowire.VarintType {
			v, n := protowire.ConsumeVarint(message)
			return n > 0 && v != 0
		}
		if n = protowire.ConsumeFieldValue(number, kind, message); n < 0 {
			return false
		}
		message = message[n:]
	}
	return false
}
