using Bridge.Testing;

namespace Bridge.Functions.Tests;

/// <summary>The shared <see cref="PipelineHarness"/> with the function app's registration (as Program makes it).</summary>
internal static class FunctionHarness
{
    public const int MaxBodyBytes = 2048;

    public static Task<PipelineHarness> StartAsync(string? emulatorHostOverride = null) =>
        PipelineHarness.StartAsync((services, configuration) => services.AddBridgeFunctions(configuration), configure: settings =>
        {
            settings["Bridge:MaxBodyBytes"] = MaxBodyBytes.ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (emulatorHostOverride is not null)
            {
                settings["Bridge:CloudTasks:EmulatorHost"] = emulatorHostOverride;
            }
        });

    extension(PipelineHarness harness)
    {
        public async Task<int> TaskCountAsync() => (await harness.TasksAsync(harness.Orders)).Count;
    }
}
