using System.Net;
using Microsoft.Extensions.Options;

namespace Bridge.Server;

/// <summary>Start-up check of <c>Bridge:Server</c>; every message names the key and the bad value.</summary>
internal sealed class ServerOptionsValidator : IValidateOptions<ServerOptions>
{
    public ValidateOptionsResult Validate(string? name, ServerOptions options)
    {
        const string key = ServerOptions.SectionName;
        var errors = new List<string>();
        if (options.Port is < 0 or > 65535)
        {
            errors.Add($"{key}:Port {options.Port} must be between 0 (any free port) and 65535.");
        }

        if (options.EmulatorGrpcPort is < 0 or > 65535)
        {
            errors.Add($"{key}:EmulatorGrpcPort {options.EmulatorGrpcPort} must be between 0 (any free port) and 65535.");
        }
        else if (options.EmulatorGrpcPort != 0 && options.EmulatorGrpcPort == options.Port)
        {
            errors.Add($"{key}:EmulatorGrpcPort {options.EmulatorGrpcPort} is also {key}:Port: the emulator's gRPC needs a port of its own.");
        }

        if (options.ServiceBusPort is < 0 or > 65535)
        {
            errors.Add($"{key}:ServiceBusPort {options.ServiceBusPort} must be between 0 (any free port) and 65535.");
        }

        if (!IPAddress.TryParse(options.ListenAddress, out _))
        {
            errors.Add($"{key}:ListenAddress '{options.ListenAddress}' is not an IP address (127.0.0.1, 0.0.0.0, ::).");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
