package main

import (
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/types"
)

// The "moved or copied?" question.
//
// A .vmx whose uuid.location does not match the host and path it is
// registered at (registered on another host, or copied to another folder) gets
// a question at its first power-on: the PowerOnVM_Task stays running with
// runtime.question set until AnswerVM answers it.
//   - "I Moved It" (1) keeps the BIOS UUID and the MACs;
//   - "I Copied It" (2) gives the VM a new BIOS UUID and new generated MACs
//     (static ones stay);
//   - "Cancel" (0) fails the power-on.
// uuid.location then follows the new place.  uuid.action = "keep" / "create"
// in the .vmx answers moved / copied in advance, as on ESXi.  Unanswered, the
// power-on fails after -question-timeout (a lab guard; 0 waits forever as
// vSphere does).

const (
	answerCancel = "0"
	answerMoved  = "1"
	answerCopied = "2"
)

type pendingQuestion struct {
	oldLocation string
	id          string // the question's id while a power-on waits for an answer
	task        types.ManagedObjectReference
	timer       *time.Timer
}

var questionSeq int64

func (x *interceptor) decideQuestion(ref types.ManagedObjectReference, cfg *vmxConfig) {
	vm, ok := simulator.Map.Get(ref).(*simulator.VirtualMachine)
	if !ok {
		return
	}
	var here string
	var template bool
	simulator.Map.WithLock(vm, func() {
		template = vm.Config.Template
		if vm.Runtime.Host != nil {
			here = location(hostUUID(*vm.Runtime.Host), canonical(vm.Config.Files.VmPathName))
		}
	})
	switch {
	case template || cfg.location == "" || cfg.location == here || cfg.action == "keep":
	case cfg.action == "create":
		x.applyCopied(ref)
	default:
		x.vmx.mu.Lock()
		x.vmx.pending[ref] = &pendingQuestion{oldLocation: cfg.location}
		x.vmx.mu.Unlock()
	}
}

func canonical(p string) string {
	var dp object.DatastorePath
	if dp.FromString(p) {
		return dp.String()
	}
	return p
}

// forget drops what is known of an unregistered or destroyed VM.
func (x *interceptor) forget(ref types.ManagedObjectReference) {
	x.vmx.mu.Lock()
	defer x.vmx.mu.Unlock()
	if q := x.vmx.pending[ref]; q != nil && q.timer != nil {
		q.timer.Stop()
	}
	delete(x.vmx.pending, ref)
}

func (x *interceptor) powerOn(req *request) {
	ref := req.method.This
	x.vmx.mu.Lock()
	q := x.vmx.pending[ref]
	x.vmx.mu.Unlock()
	if q != nil {
		x.ask(req, ref, q)
		return
	}
	if msg, fault := staticMACFault(ref); fault != nil {
		writeResult(req.w, &types.PowerOnVM_TaskResponse{Returnval: failedTask(ref, "PowerOnVM_Task", msg, fault)})
		return
	}
	x.syncAfter(req)
}

// ask starts a power-on that waits for the answer to the question.
func (x *interceptor) ask(req *request, ref types.ManagedObjectReference, q *pendingQuestion) {
	vm, ok := simulator.Map.Get(ref).(*simulator.VirtualMachine)
	if !ok {
		x.next.ServeHTTP(req.w, req.r)
		return
	}
	x.vmx.mu.Lock()
	if q.id != "" {
		task := q.task
		x.vmx.mu.Unlock()
		writeFault(req.w, "Another task is already in progress.", &types.TaskInProgress{Task: task})
		return
	}
	task := newTask(ref, "PowerOnVM_Task", func(*simulator.Task) (types.AnyType, types.BaseMethodFault) { return nil, nil })
	simulator.Map.Update(task, []types.PropertyChange{
		{Name: "info.startTime", Val: time.Now()},
		{Name: "info.state", Val: types.TaskInfoStateRunning},
	})
	q.id = fmt.Sprintf("_vmx%d", atomic.AddInt64(&questionSeq, 1))
	q.task = task.Self
	if x.question > 0 {
		id := q.id
		q.timer = time.AfterFunc(x.question, func() { x.timeout(ref, id) })
	}
	question := movedOrCopied(q.id)
	x.vmx.mu.Unlock()
	simulator.Map.WithLock(vm, func() {
		simulator.Map.Update(vm, []types.PropertyChange{
			{Name: "runtime.question", Val: question},
			{Name: "summary.runtime.question", Val: question},
		})
	})
	writeResult(req.w, &types.PowerOnVM_TaskResponse{Returnval: task.Self})
}

func movedOrCopied(id string) *types.VirtualMachineQuestionInfo {
	choice := func(key, label, summary string) types.BaseElementDescription {
		return &types.ElementDescription{Description: types.Description{Label: label, Summary: summary}, Key: key}
	}
	text := "This virtual machine might have been moved or copied.\n" +
		"In order to configure certain management and networking features, VMware ESX needs to know if " +
		"this virtual machine was moved or copied.\n\nIf you don't know, answer \"I Copied It\".\n"
	return &types.VirtualMachineQuestionInfo{
		Id:   id,
		Text: "msg.uuid.altered:" + text,
		Choice: types.ChoiceOption{
			ChoiceInfo: []types.BaseElementDescription{
				choice(answerCancel, "button.uuid.cancel", "Cancel"),
				choice(answerMoved, "button.uuid.movedTheVM", "I _Moved It"),
				choice(answerCopied, "button.uuid.copiedTheVM", "I _Copied It"),
			},
			DefaultIndex: 2,
		},
		Message: []types.VirtualMachineMessage{{Id: "msg.uuid.altered", Text: text}},
	}
}

func (x *interceptor) clearQuestion(ref types.ManagedObjectReference) {
	if vm, ok := simulator.Map.Get(ref).(*simulator.VirtualMachine); ok {
		simulator.Map.WithLock(vm, func() {
			simulator.Map.Update(vm, []types.PropertyChange{
				{Name: "runtime.question", Val: nil},
				{Name: "summary.runtime.question", Val: nil},
			})
		})
	}
}

// timeout fails a power-on whose question stayed unanswered; the question comes back at the next power-on.
func (x *interceptor) timeout(ref types.ManagedObjectReference, id string) {
	x.vmx.mu.Lock()
	q := x.vmx.pending[ref]
	if q == nil || q.id != id {
		x.vmx.mu.Unlock()
		return
	}
	task := q.task
	q.id, q.task, q.timer = "", types.ManagedObjectReference{}, nil
	x.vmx.mu.Unlock()
	x.clearQuestion(ref)
	msg := fmt.Sprintf("The question msg.uuid.altered (moved or copied?) was not answered within %s (lab simulator -question-timeout).", x.question)
	finishTask(task, &types.LocalizedMethodFault{Fault: &types.Timedout{}, LocalizedMessage: msg})
}

func (x *interceptor) answerVM(req *request) {
	body := req.method.Body.(*types.AnswerVM)
	ref := req.method.This
	x.vmx.mu.Lock()
	q := x.vmx.pending[ref]
	if q == nil || q.id == "" || q.id != body.QuestionId {
		x.vmx.mu.Unlock()
		writeFault(req.w, "A specified parameter was not correct: questionId", &types.InvalidArgument{InvalidProperty: "questionId"})
		return
	}
	switch body.AnswerChoice {
	case answerCancel, answerMoved, answerCopied:
	default:
		x.vmx.mu.Unlock()
		writeFault(req.w, "A specified parameter was not correct: answerChoice", &types.InvalidArgument{InvalidProperty: "answerChoice"})
		return
	}
	task := q.task
	if q.timer != nil {
		q.timer.Stop()
	}
	if body.AnswerChoice == answerCancel {
		q.id, q.task, q.timer = "", types.ManagedObjectReference{}, nil
	} else {
		delete(x.vmx.pending, ref)
	}
	x.vmx.mu.Unlock()
	x.clearQuestion(ref)

	switch body.AnswerChoice {
	case answerCancel:
		finishTask(task, &types.LocalizedMethodFault{Fault: &types.RequestCanceled{}, LocalizedMessage: "The operation was canceled by the user."})
	default:
		if body.AnswerChoice == answerCopied {
			x.applyCopied(ref)
		}
		x.syncVMX(ref) // uuid.location follows the new place
		finishTask(task, x.powerOnNow(ref))
	}
	writeResult(req.w, &types.AnswerVMResponse{})
}

// powerOnNow powers the VM on (in process) and returns the failure, if any.
func (x *interceptor) powerOnNow(ref types.ManagedObjectReference) *types.LocalizedMethodFault {
	if msg, fault := staticMACFault(ref); fault != nil {
		return &types.LocalizedMethodFault{Fault: fault, LocalizedMessage: msg}
	}
	res, err := methods.PowerOnVM_Task(x.ctx, x.client, &types.PowerOnVM_Task{This: ref})
	if err != nil {
		return &types.LocalizedMethodFault{Fault: &types.RuntimeFault{}, LocalizedMessage: err.Error()}
	}
	_, fault := taskResult(res.Returnval)
	return fault
}

// applyCopied gives the VM a new BIOS UUID and new MACs for its generated and assigned NICs.
func (x *interceptor) applyCopied(ref types.ManagedObjectReference) {
	vm, ok := simulator.Map.Get(ref).(*simulator.VirtualMachine)
	if !ok {
		return
	}
	id := randomUUID()
	simulator.Map.WithLock(vm, func() {
		devices := vm.Config.Hardware.Device
		nic := 0
		for _, d := range devices {
			card, ok := d.(types.BaseVirtualEthernetCard)
			if !ok {
				continue
			}
			c := card.GetVirtualEthernetCard()
			switch strings.ToLower(c.AddressType) {
			case "manual":
			case "assigned":
				c.MacAddress = assignedMAC()
			default:
				c.MacAddress = generatedMAC(id, nic*10)
			}
			nic++
		}
		simulator.Map.Update(vm, []types.PropertyChange{
			{Name: "config.uuid", Val: id},
			{Name: "summary.config.uuid", Val: id},
			{Name: "config.hardware.device", Val: devices},
		})
	})
}

// finishTask completes a task the interceptor started (nil fault: success).
func finishTask(ref types.ManagedObjectReference, fault *types.LocalizedMethodFault) {
	task, ok := simulator.Map.Get(ref).(*simulator.Task)
	if !ok {
		return
	}
	state := types.TaskInfoStateSuccess
	var errVal interface{}
	if fault != nil {
		state = types.TaskInfoStateError
		errVal = *fault
	}
	simulator.Map.Update(task, []types.PropertyChange{
		{Name: "info.completeTime", Val: time.Now()},
		{Name: "info.state", Val: state},
		{Name: "info.result", Val: nil},
		{Name: "info.error", Val: errVal},
	})
}
