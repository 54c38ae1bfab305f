using Bridge.CloudTasks.Iam.V1;
using Bridge.CloudTasks.V2Beta3;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Task = System.Threading.Tasks.Task;
using TaskMessage = Bridge.CloudTasks.V2Beta3.Task;

namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>The CloudTasks gRPC service (and, through JSON transcoding, its REST surface) over the emulator's state.</summary>
internal sealed class CloudTasksService(EmulatorState state, Dispatcher dispatcher, BatchOperations batches) : Bridge.CloudTasks.V2Beta3.CloudTasks.CloudTasksBase
{
    public override Task<ListQueuesResponse> ListQueues(ListQueuesRequest request, ServerCallContext context)
    {
        var (queues, next) = state.ListQueues(request);
        return Task.FromResult(new ListQueuesResponse { Queues = { queues }, NextPageToken = next });
    }

    public override Task<Queue> GetQueue(GetQueueRequest request, ServerCallContext context) => Task.FromResult(state.GetQueue(request));

    public override Task<Queue> CreateQueue(CreateQueueRequest request, ServerCallContext context) => Task.FromResult(state.CreateQueue(request));

    public override Task<Queue> UpdateQueue(UpdateQueueRequest request, ServerCallContext context) => Task.FromResult(state.UpdateQueue(request));

    public override Task<Empty> DeleteQueue(DeleteQueueRequest request, ServerCallContext context)
    {
        state.DeleteQueue(request);
        return Task.FromResult(new Empty());
    }

    public override Task<Queue> PurgeQueue(PurgeQueueRequest request, ServerCallContext context) => Task.FromResult(state.PurgeQueue(request));

    public override Task<Queue> PauseQueue(PauseQueueRequest request, ServerCallContext context) =>
        Task.FromResult(state.SetQueueState(request.Name, Queue.Types.State.Paused));

    public override Task<Queue> ResumeQueue(ResumeQueueRequest request, ServerCallContext context) =>
        Task.FromResult(state.SetQueueState(request.Name, Queue.Types.State.Running));

    public override Task<Policy> GetIamPolicy(GetIamPolicyRequest request, ServerCallContext context) => Task.FromResult(state.GetIamPolicy(request));

    public override Task<Policy> SetIamPolicy(SetIamPolicyRequest request, ServerCallContext context) => Task.FromResult(state.SetIamPolicy(request));

    public override Task<TestIamPermissionsResponse> TestIamPermissions(TestIamPermissionsRequest request, ServerCallContext context) =>
        Task.FromResult(state.TestIamPermissions(request));

    public override Task<ListTasksResponse> ListTasks(ListTasksRequest request, ServerCallContext context)
    {
        var (tasks, next) = state.ListTasks(request);
        return Task.FromResult(new ListTasksResponse { Tasks = { tasks }, NextPageToken = next });
    }

    public override Task<TaskMessage> GetTask(GetTaskRequest request, ServerCallContext context) => Task.FromResult(state.GetTask(request));

    public override Task<TaskMessage> CreateTask(CreateTaskRequest request, ServerCallContext context) => state.CreateTaskAsync(request);

    public override Task<Bridge.CloudTasks.LongRunning.Operation> BatchCreateTasks(BatchCreateTasksRequest request, ServerCallContext context) =>
        batches.BatchCreateTasksAsync(request);

    public override Task<Bridge.CloudTasks.LongRunning.Operation> BatchDeleteTasks(BatchDeleteTasksRequest request, ServerCallContext context) =>
        Task.FromResult(batches.BatchDeleteTasks(request));

    public override Task<Empty> DeleteTask(DeleteTaskRequest request, ServerCallContext context)
    {
        state.DeleteTask(request);
        return Task.FromResult(new Empty());
    }

    public override Task<TaskMessage> RunTask(RunTaskRequest request, ServerCallContext context)
    {
        var (task, work) = state.RunTask(request);
        dispatcher.Start(work);
        return Task.FromResult(task);
    }

    public override Task<CmekConfig> GetCmekConfig(GetCmekConfigRequest request, ServerCallContext context) => Task.FromResult(state.GetCmekConfig(request));

    public override Task<CmekConfig> UpdateCmekConfig(UpdateCmekConfigRequest request, ServerCallContext context) => Task.FromResult(state.UpdateCmekConfig(request));
}
