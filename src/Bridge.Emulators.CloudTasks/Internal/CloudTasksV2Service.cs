using Bridge.CloudTasks.Iam.V1;
using Bridge.Emulators.CloudTasks.V2;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Beta = Bridge.CloudTasks.V2Beta3;
using Task = System.Threading.Tasks.Task;
using TaskMessage = Bridge.Emulators.CloudTasks.V2.Task;

namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>
/// google.cloud.tasks.v2 over gRPC (and REST under <c>/v2/...</c> through JSON transcoding) from the same engine as
/// v2beta3: one set of queues, tasks and policies, seen through either version.
/// </summary>
internal sealed class CloudTasksV2Service(EmulatorState state, Dispatcher dispatcher) : V2.CloudTasks.CloudTasksBase
{
    public override Task<ListQueuesResponse> ListQueues(ListQueuesRequest request, ServerCallContext context)
    {
        var (queues, next) = state.ListQueues(V2Mapping.Convert(request, Beta.ListQueuesRequest.Parser));
        return Task.FromResult(new ListQueuesResponse { Queues = { queues.Select(V2Mapping.FromBeta) }, NextPageToken = next });
    }

    public override Task<Queue> GetQueue(GetQueueRequest request, ServerCallContext context) =>
        Task.FromResult(V2Mapping.FromBeta(state.GetQueue(new Beta.GetQueueRequest { Name = request.Name })));

    public override Task<Queue> CreateQueue(CreateQueueRequest request, ServerCallContext context) =>
        Task.FromResult(V2Mapping.FromBeta(state.CreateQueue(new Beta.CreateQueueRequest { Parent = request.Parent, Queue = V2Mapping.ToBeta(request.Queue) })));

    public override Task<Queue> UpdateQueue(UpdateQueueRequest request, ServerCallContext context) =>
        Task.FromResult(V2Mapping.FromBeta(state.UpdateQueue(new Beta.UpdateQueueRequest
        {
            Queue = V2Mapping.ToBeta(request.Queue),
            UpdateMask = V2Mapping.ToBetaMask(request.UpdateMask),
        })));

    public override Task<Empty> DeleteQueue(DeleteQueueRequest request, ServerCallContext context)
    {
        state.DeleteQueue(new Beta.DeleteQueueRequest { Name = request.Name });
        return Task.FromResult(new Empty());
    }

    public override Task<Queue> PurgeQueue(PurgeQueueRequest request, ServerCallContext context) =>
        Task.FromResult(V2Mapping.FromBeta(state.PurgeQueue(new Beta.PurgeQueueRequest { Name = request.Name })));

    public override Task<Queue> PauseQueue(PauseQueueRequest request, ServerCallContext context) =>
        Task.FromResult(V2Mapping.FromBeta(state.SetQueueState(request.Name, Beta.Queue.Types.State.Paused)));

    public override Task<Queue> ResumeQueue(ResumeQueueRequest request, ServerCallContext context) =>
        Task.FromResult(V2Mapping.FromBeta(state.SetQueueState(request.Name, Beta.Queue.Types.State.Running)));

    public override Task<Policy> GetIamPolicy(GetIamPolicyRequest request, ServerCallContext context) => Task.FromResult(state.GetIamPolicy(request));

    public override Task<Policy> SetIamPolicy(SetIamPolicyRequest request, ServerCallContext context) => Task.FromResult(state.SetIamPolicy(request));

    public override Task<TestIamPermissionsResponse> TestIamPermissions(TestIamPermissionsRequest request, ServerCallContext context) =>
        Task.FromResult(state.TestIamPermissions(request));

    public override Task<ListTasksResponse> ListTasks(ListTasksRequest request, ServerCallContext context)
    {
        var (tasks, next) = state.ListTasks(V2Mapping.Convert(request, Beta.ListTasksRequest.Parser));
        return Task.FromResult(new ListTasksResponse { Tasks = { tasks.Select(V2Mapping.FromBeta) }, NextPageToken = next });
    }

    public override Task<TaskMessage> GetTask(GetTaskRequest request, ServerCallContext context) =>
        Task.FromResult(V2Mapping.FromBeta(state.GetTask(V2Mapping.Convert(request, Beta.GetTaskRequest.Parser))));

    public override async Task<TaskMessage> CreateTask(CreateTaskRequest request, ServerCallContext context) =>
        V2Mapping.FromBeta(await state.CreateTaskAsync(new Beta.CreateTaskRequest
        {
            Parent = request.Parent,
            Task = V2Mapping.ToBeta(request.Task),
            ResponseView = (Beta.Task.Types.View)(int)request.ResponseView,
        }).ConfigureAwait(false));

    public override Task<Empty> DeleteTask(DeleteTaskRequest request, ServerCallContext context)
    {
        state.DeleteTask(new Beta.DeleteTaskRequest { Name = request.Name });
        return Task.FromResult(new Empty());
    }

    public override Task<TaskMessage> RunTask(RunTaskRequest request, ServerCallContext context)
    {
        var (task, work) = state.RunTask(V2Mapping.Convert(request, Beta.RunTaskRequest.Parser));
        dispatcher.Start(work);
        return Task.FromResult(V2Mapping.FromBeta(task));
    }
}
