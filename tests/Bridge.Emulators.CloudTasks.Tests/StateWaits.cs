using Bridge.Emulators.CloudTasks.Internal;
using Bridge.Testing;
using Microsoft.Extensions.DependencyInjection;
using TaskMessage = Bridge.CloudTasks.V2Beta3.Task;

namespace Bridge.Emulators.CloudTasks.Tests;

/// <summary>Waits on the emulator's own change signal (never a sleep), each wait bounded.</summary>
internal static class StateWaits
{
    public static EmulatorState State(this EmulatorHost host) => host.Services.GetRequiredService<EmulatorState>();

    /// <summary>Waits until <paramref name="condition"/> holds, checking after every change of the state.</summary>
    public static async Task<T> WaitUntilAsync<T>(this EmulatorState state, Func<T?> condition, string what, TimeSpan? timeout = null)
        where T : class
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
        while (true)
        {
            var changed = state.Changed;
            if (condition() is { } value)
            {
                return value;
            }

            try
            {
                await changed.WaitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"Timed out waiting for {what}.");
            }
        }
    }

    /// <summary>Waits until the task's <paramref name="dispatchCount"/>-th attempt has a recorded outcome, and returns the task.</summary>
    public static Task<TaskMessage> WaitForAttemptAsync(this EmulatorState state, string taskName, int dispatchCount) =>
        state.WaitUntilAsync(
            () =>
            {
                var task = state.GetTask(new Bridge.CloudTasks.V2Beta3.GetTaskRequest { Name = taskName });
                return task.DispatchCount == dispatchCount && task.LastAttempt?.ResponseStatus is not null && !state.IsInFlight(taskName) ? task : null;
            },
            $"attempt {dispatchCount} of {taskName} to complete");
}
