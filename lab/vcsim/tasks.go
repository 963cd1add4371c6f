package main

import (
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// Custom tasks (TaskManager.CreateTask, Task.SetTaskState / UpdateProgress /
// SetTaskDescription), which a client uses to show its own work in the task
// list; the stock simulator has none of them.  Privileges: Task.Create on the
// task's object, Task.Update on it.

func (x *interceptor) createTask(req *request) {
	body := req.method.Body.(*types.CreateTask)
	task := simulator.CreateTask(body.Obj, body.TaskTypeId, func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		return nil, nil
	})
	simulator.Map.Update(task, []types.PropertyChange{
		{Name: "info.name", Val: nil},
		{Name: "info.descriptionId", Val: body.TaskTypeId},
		{Name: "info.cancelable", Val: body.Cancelable},
		{Name: "info.reason", Val: &types.TaskReasonUser{UserName: body.InitiatedBy}},
	})
	var info types.TaskInfo
	simulator.Map.WithLock(task, func() { info = task.Info })
	writeResult(req.w, &types.CreateTaskResponse{Returnval: info})
}

func (x *interceptor) setTaskState(req *request) {
	body := req.method.Body.(*types.SetTaskState)
	task, ok := simulator.Map.Get(req.method.This).(*simulator.Task)
	if !ok {
		writeFault(req.w, "The object has already been deleted or has not been completely created",
			&types.ManagedObjectNotFound{Obj: req.method.This})
		return
	}
	changes := []types.PropertyChange{{Name: "info.state", Val: body.State}}
	switch body.State {
	case types.TaskInfoStateRunning:
		changes = append(changes, types.PropertyChange{Name: "info.startTime", Val: time.Now()})
	case types.TaskInfoStateSuccess, types.TaskInfoStateError:
		changes = append(changes, types.PropertyChange{Name: "info.completeTime", Val: time.Now()})
		changes = append(changes, types.PropertyChange{Name: "info.result", Val: body.Result})
		if body.Fault != nil {
			changes = append(changes, types.PropertyChange{Name: "info.error", Val: *body.Fault})
		}
	}
	simulator.Map.Update(task, changes)
	writeResult(req.w, &types.SetTaskStateResponse{})
}

func (x *interceptor) updateProgress(req *request) {
	body := req.method.Body.(*types.UpdateProgress)
	if task, ok := simulator.Map.Get(req.method.This).(*simulator.Task); ok {
		simulator.Map.Update(task, []types.PropertyChange{{Name: "info.progress", Val: body.PercentDone}})
	}
	writeResult(req.w, &types.UpdateProgressResponse{})
}

func (x *interceptor) setTaskDescription(req *request) {
	body := req.method.Body.(*types.SetTaskDescription)
	if task, ok := simulator.Map.Get(req.method.This).(*simulator.Task); ok {
		simulator.Map.Update(task, []types.PropertyChange{{Name: "info.description", Val: body.Description}})
	}
	writeResult(req.w, &types.SetTaskDescriptionResponse{})
}

// taskEntity checks a task method on the task's object.
func taskEntity(priv string) rule {
	return func(m *simulator.Method) []check {
		task, ok := simulator.Map.Get(m.This).(*simulator.Task)
		if !ok {
			return nil
		}
		var entity *types.ManagedObjectReference
		simulator.Map.WithLock(task, func() { entity = task.Info.Entity })
		if entity == nil {
			return on(content().RootFolder, priv)
		}
		return on(*entity, priv)
	}
}
