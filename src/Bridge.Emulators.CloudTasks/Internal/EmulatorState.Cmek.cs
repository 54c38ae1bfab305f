using Bridge.CloudTasks.V2Beta3;

namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>CMEK config RPCs (one config per location; the key is recorded, nothing is encrypted).</summary>
internal sealed partial class EmulatorState
{
    public CmekConfig GetCmekConfig(GetCmekConfigRequest request)
    {
        var location = CmekRules.ParseConfigName(request.Name, "name");
        lock (_gate)
        {
            return _cmek.TryGetValue(location + CmekRules.Suffix, out var config) ? config.Clone() : new CmekConfig { Name = location + CmekRules.Suffix };
        }
    }

    public CmekConfig UpdateCmekConfig(UpdateCmekConfigRequest request)
    {
        if (request.CmekConfig is null)
        {
            throw Errors.InvalidArgument("cmek_config", "cmek_config is required.");
        }

        var location = CmekRules.ParseConfigName(request.CmekConfig.Name, "cmek_config.name");
        CmekRules.ValidateKey(location, request.CmekConfig.KmsKey, "cmek_config.kms_key");
        var config = new CmekConfig { Name = location + CmekRules.Suffix, KmsKey = request.CmekConfig.KmsKey };
        return Durably(() =>
        {
            _store.SaveCmekConfig(config);
            var previous = _cmek.GetValueOrDefault(config.Name);
            _cmek[config.Name] = config;
            return new Undoable<CmekConfig>(config.Clone(), () => Restore(_cmek, config.Name, config, previous));
        });
    }
}
