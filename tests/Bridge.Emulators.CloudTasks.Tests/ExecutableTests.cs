using System.Net;
using System.Net.Sockets;
using Bridge.Testing;
using Bridge.Emulators.CloudTasks.Internal;
using Microsoft.Extensions.Options;
using Task = System.Threading.Tasks.Task;

namespace Bridge.Emulators.CloudTasks.Tests;

/// <summary>The executable's start-up: settings checked with messages naming the key, a port in use named in one line.</summary>
public sealed class ExecutableTests
{
    private static async Task<(int ExitCode, string Stdout, string Stderr)> RunToExitAsync(params string[] args)
    {
        var exited = await ChildProcess.RunToExitAsync(EmulatorProcess.StartInfo(args), TimeSpan.FromSeconds(60));
        return (exited.ExitCode, exited.Stdout, exited.Stderr);
    }

    [Theory]
    [InlineData("--http-port")]
    [InlineData("--port")]
    public async Task A_port_in_use_is_one_line_naming_the_setting_to_change(string flag)
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        string[] args = flag == "--port" ? ["--port", port, "--http-port", "0"] : ["--port", "0", "--http-port", port];

        var (exitCode, stdout, stderr) = await RunToExitAsync(args);

        Assert.Equal(2, exitCode);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains($"Port {port}", line, StringComparison.Ordinal);
        Assert.Contains($"choose another with {flag} <port>", line, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stdout + stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Invalid_settings_stop_the_start_with_one_line_each_naming_the_key()
    {
        var (exitCode, stdout, stderr) = await RunToExitAsync("--port", "70000", "--listen", "nowhere", "--queues", "p/l/bad_queue");

        Assert.Equal(2, exitCode);
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        Assert.Contains(lines, l => l.Contains("Emulator:Port 70000", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("Emulator:ListenAddress 'nowhere'", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("Emulator:Queues entry 'p/l/bad_queue'", StringComparison.Ordinal));
        Assert.DoesNotContain("   at ", stdout + stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_second_emulator_on_the_same_data_folder_stops_with_one_line()
    {
        var data = Path.Combine(Path.GetTempPath(), "bridge-emulator-twice-" + Guid.NewGuid().ToString("N"));
        try
        {
            using var first = await EmulatorProcess.StartAsync("--data", data);

            var (exitCode, stdout, stderr) = await RunToExitAsync("--port", "0", "--http-port", "0", "--data", data);

            Assert.Equal(2, exitCode);
            var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.Contains("in use by another emulator", line, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", stdout + stderr, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }

    [Fact]
    public async Task Listen_localhost_serves_on_loopback()
    {
        using var emulator = await EmulatorProcess.StartAsync("--listen", "localhost");
        using var http = new HttpClient();

        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(new Uri(emulator.HttpAddress, "/health"))).StatusCode);
    }

    public static TheoryData<string, Action<EmulatorOptions>> InvalidOptions() => new()
    {
        { "Emulator:HttpPort -1", o => o.HttpPort = -1 },
        { "Emulator:Port and Emulator:HttpPort are both 9000", o => (o.Port, o.HttpPort) = (9000, 9000) },
        { "Emulator:Issuer 'issuer'", o => o.Issuer = "issuer" },
        { "Emulator:AppEngineHost 'ftp://x'", o => o.AppEngineHost = "ftp://x" },
        { "Emulator:QueueNameReuseDelay", o => o.QueueNameReuseDelay = TimeSpan.FromSeconds(-1) },
        { "Emulator:TokenLifetime", o => o.TokenLifetime = TimeSpan.Zero },
        { "Emulator:Queues entry 'q'", o => o.Queues = "p/l/ok, q" },
    };

    [Theory]
    [MemberData(nameof(InvalidOptions))]
    public void Each_invalid_option_is_named(string message, Action<EmulatorOptions> change)
    {
        var options = new EmulatorOptions();
        change(options);

        var result = new EmulatorOptionsValidator().Validate(null, options);

        Assert.True(result.Failed);
        Assert.Contains(message, Assert.Single(result.Failures!), StringComparison.Ordinal);
    }

    [Fact]
    public void The_defaults_are_valid() => Assert.True(new EmulatorOptionsValidator().Validate(null, new EmulatorOptions()).Succeeded);

    [Fact]
    public async Task A_host_with_invalid_options_fails_to_start_naming_the_key()
    {
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => Bridge.Testing.EmulatorHost.StartAsync(o => o.AppEngineHost = "not a url"));
        Assert.Contains("Emulator:AppEngineHost", error.Message, StringComparison.Ordinal);
    }
}
