using System.Collections.Concurrent;
using Bridge.CloudTasks.V2Beta3;
using Bridge.Emulators.CloudTasks.Internal;
using Bridge.Testing;
using Grpc.Core;
using Microsoft.Extensions.Logging.Abstractions;
using Task = System.Threading.Tasks.Task;
using TaskMessage = Bridge.CloudTasks.V2Beta3.Task;

namespace Bridge.Emulators.CloudTasks.Tests;

/// <summary>
/// With a durable store the dispatcher finishes the attempts whose outcomes share a commit together, one continuation
/// per commit. An attempt whose outcome went into one commit while another commit was already gathering must still be
/// finished: a lost one would keep a stop waiting for it for ever.
/// </summary>
public sealed class DispatchCommitWaitersTests : IAsyncLifetime
{
    private const string Location = "projects/p/locations/l";
    private const string QueueName = Location + "/queues/q";
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);
    private readonly DurableStateFolder _folder = new();
    private readonly ConcurrentDictionary<string, ManualResetEventSlim> _answers = new();
    private HttpTargetServer _target = null!;

    public async Task InitializeAsync()
    {
        _target = await HttpTargetServer.StartAsync();

        // Each task's request is answered only when the test lets it (bounded: never a hung server).
        _target.Respond = (request, _) =>
        {
            Assert.True(Answer(request.Header("X-CloudTasks-TaskName")!).Wait(Bound));
            return TargetResponse.Ok;
        };
    }

    public async Task DisposeAsync()
    {
        foreach (var answer in _answers.Values)
        {
            answer.Set();
        }

        await _target.DisposeAsync();
        _folder.Dispose();
    }

    [Fact]
    public async Task Outcomes_in_two_commits_gathered_one_after_the_other_are_all_finished_and_a_stop_does_not_wait_for_them()
    {
        var store = _folder.OpenStore();
        var state = _folder.Open(store);
        var holding = 0;
        using var entered = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        try
        {
            state.CreateQueue(new CreateQueueRequest { Parent = Location, Queue = new Queue { Name = QueueName } });
            state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = NewTask("a") });
            state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = NewTask("b") });
            var issuer = new OidcIssuer(OidcIssuer.CreateSigningKeyPem(), () => "http://localhost", _folder.Clock, TimeSpan.FromHours(1));
            var dispatcher = new Dispatcher(state, issuer, new EmulatorOptions(), _folder.Clock, NullLogger<Dispatcher>.Instance);
            await dispatcher.StartAsync(CancellationToken.None);
            try
            {
                Assert.Equal(2, (await _target.WaitForRequestsAsync(2, Bound)).Count);
                await store.WhenDurable().WaitAsync(Bound); // both starts are on disk: the next commit holds an outcome

                // a's outcome goes into a commit the writer then holds; b's goes into the next one, gathered meanwhile.
                store.BeforeCommit = () =>
                {
                    if (Interlocked.Exchange(ref holding, 0) == 1)
                    {
                        entered.Set();
                        Assert.True(release.Wait(Bound));
                    }
                };
                Volatile.Write(ref holding, 1);
                Answer("a").Set();
                Assert.True(entered.Wait(Bound), "a's outcome reaches the writer");
                Answer("b").Set();
                await state.WaitUntilAsync(() => state.IsInFlight($"{QueueName}/tasks/b") ? null : "settled", "b's outcome to be in memory (queued behind a's commit)");
                release.Set();

                // Both attempts are finished once both commits are done: the stop, which waits for every attempt, ends.
                await dispatcher.StopAsync(CancellationToken.None).WaitAsync(Bound);
            }
            finally
            {
                release.Set();
                dispatcher.Dispose();
                issuer.Dispose();
            }
        }
        finally
        {
            release.Set(); // never leave the writer held: disposing the store waits for it
            state.Dispose();
        }

        using var reopened = _folder.Open();
        foreach (var id in new[] { "a", "b" })
        {
            // Both successes are on disk: the tasks are gone and their names reserved.
            Assert.Equal(StatusCode.AlreadyExists, Assert.Throws<RpcException>(() => reopened.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = NewTask(id) })).StatusCode);
        }
    }

    private ManualResetEventSlim Answer(string taskId) => _answers.GetOrAdd(taskId, _ => new ManualResetEventSlim());

    private TaskMessage NewTask(string id) => new() { Name = $"{QueueName}/tasks/{id}", HttpRequest = new HttpRequest { Url = _target.Url("/x").ToString() } };
}
