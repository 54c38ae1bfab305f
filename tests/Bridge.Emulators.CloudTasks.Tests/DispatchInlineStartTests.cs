using System.Diagnostics;
using System.Net;
using Bridge.CloudTasks.V2Beta3;
using Bridge.Emulators.CloudTasks.Internal;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Task = System.Threading.Tasks.Task;
using TaskMessage = Bridge.CloudTasks.V2Beta3.Task;

namespace Bridge.Emulators.CloudTasks.Tests;

/// <summary>
/// A completion starts the next attempt of its queue on its own thread, up to that attempt's send (no thread-pool hop).
/// An attempt whose send completes synchronously then completes and hands out the next one on the same stack: that
/// one must go through the thread pool, or a busy queue would grow the stack by an attempt per task.
/// </summary>
public sealed class DispatchInlineStartTests
{
    private const string Location = "projects/p/locations/l";
    private const string QueueName = Location + "/queues/q";
    private const int TaskCount = 100;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Attempts_answered_synchronously_one_after_another_never_nest_more_than_one_attempt_on_a_stack()
    {
        // Time stands still: every task is due, and the burst (500) covers them all, so only the one slot paces them.
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 11, 29, 12, 0, 0, TimeSpan.Zero));
        using var state = new EmulatorState(new InMemoryStore(), new EmulatorOptions(), clock);
        state.CreateQueue(new CreateQueueRequest
        {
            Parent = Location,
            Queue = new Queue { Name = QueueName, RateLimits = new RateLimits { MaxConcurrentDispatches = 1, MaxDispatchesPerSecond = 500, MaxBurstSize = 500 } },
        });
        for (var i = 0; i < TaskCount; i++)
        {
            state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = new TaskMessage { Name = $"{QueueName}/tasks/t{i}", HttpRequest = new HttpRequest { Url = "http://127.0.0.1:9/x" } } });
        }

        var handler = new SynchronousHandler();
        var issuer = new OidcIssuer(OidcIssuer.CreateSigningKeyPem(), () => "http://localhost", clock, TimeSpan.FromHours(1));
        var dispatcher = new Dispatcher(state, issuer, new EmulatorOptions(), clock, NullLogger<Dispatcher>.Instance, handler);
        await dispatcher.StartAsync(CancellationToken.None);
        try
        {
            await state.WaitUntilAsync(() => state.ListTasks(new ListTasksRequest { Parent = QueueName }).Tasks.Count == 0 ? "done" : null, "every task to be dispatched", Bound);
        }
        finally
        {
            using var stop = new CancellationTokenSource(Bound);
            await dispatcher.StopAsync(stop.Token);
            dispatcher.Dispose();
        }

        Assert.Equal(TaskCount, handler.Sent);

        // One attempt from the loop (or a thread-pool hop) plus at most one started inline by its completion.
        Assert.InRange(handler.MostAttemptsOnAStack, 1, 2);
        Assert.True(handler.SawInlineStart, "some attempt was started inline by a completion (the saving this guards)");
    }

    /// <summary>Answers 200 at once, counting the attempts (their state machines) on the sending thread's stack.</summary>
    private sealed class SynchronousHandler : HttpMessageHandler
    {
        private int _sent;
        private int _most;
        private int _inline;

        public int Sent => Volatile.Read(ref _sent);

        public int MostAttemptsOnAStack => Volatile.Read(ref _most);

        public bool SawInlineStart => Volatile.Read(ref _inline) > 0;

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var attempts = new StackTrace(false).GetFrames().Count(f => f.GetMethod()?.DeclaringType?.Name.StartsWith("<RunAsync>", StringComparison.Ordinal) == true);
            int most;
            while (attempts > (most = Volatile.Read(ref _most)) && Interlocked.CompareExchange(ref _most, attempts, most) != most)
            {
            }

            if (attempts >= 2)
            {
                Interlocked.Increment(ref _inline);
            }

            Interlocked.Increment(ref _sent);
            return Task.FromResult(new HttpResponseMessage(HttpStatusCode.OK));
        }
    }
}
