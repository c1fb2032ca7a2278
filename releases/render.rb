# Renders one job of a release the way BOSH (director and create-env) does,
# so that tests can feed the result to the real CPI binary:
#
#   ruby releases/render.rb JOB_DIR MANIFEST.yml OUT_DIR
#
# MANIFEST.yml holds `properties:` (the manifest's job properties) and
# optionally `spec:` (ip, address, name, index, id, az, deployment,
# networks...). Each template of the job spec's `templates:` map is rendered
# with ERB (trim mode "-") into OUT_DIR/<destination>; bin/* are made
# executable.
#
# The context is BOSH's: only properties the job spec declares are visible;
# each takes the manifest's value, else the spec's default, else nil.
# `p(name)` raises naming the property when it is nil, `p(name, default)`
# does not, `p([a, b])` takes the first that is set; `if_p` yields only when
# every name is set and returns an object with `else` / `else_if_p`.
# Exit 1 with "Error filling in template ..." naming the property on failure.

require "erb"
require "json"
require "yaml"
require "fileutils"

module Render
  # Dotted lookup in nested hashes; nil when any step is missing.
  def self.dig(hash, name)
    name.split(".").reduce(hash) do |node, key|
      return nil unless node.is_a?(Hash)
      node[key]
    end
  end

  def self.store(hash, name, value)
    *parents, last = name.split(".")
    node = parents.reduce(hash) { |h, key| h[key] = {} unless h[key].is_a?(Hash); h[key] }
    node[last] = value
  end

  # The job's property tree: declared names only, manifest over default.
  def self.properties(declared, manifest)
    declared.each_with_object({}) do |(name, definition), tree|
      value = dig(manifest, name)
      value = (definition || {})["default"] if value.nil?
      store(tree, name, value)
    end
  end

  # Manifest keys the job does not declare: BOSH drops them without a word;
  # this renderer says so on stderr, which is all a test can see of them.
  def self.undeclared(manifest, declared, prefix = nil)
    return [] unless manifest.is_a?(Hash)
    manifest.flat_map do |key, value|
      name = prefix ? "#{prefix}.#{key}" : key.to_s
      if declared.key?(name)
        []
      elsif value.is_a?(Hash) && declared.keys.any? { |d| d.start_with?("#{name}.") }
        undeclared(value, declared, name)
      else
        [name]
      end
    end
  end

  # Hashes read as objects (`spec.networks.default.ip`), as BOSH's spec does.
  class Struct
    def initialize(hash)
      @table = hash.to_h { |k, v| [k.to_s, Struct.wrap(v)] }
    end

    def self.wrap(value)
      case value
      when Hash then Struct.new(value)
      when Array then value.map { |v| wrap(v) }
      else value
      end
    end

    def [](key)
      @table[key.to_s]
    end

    def to_h
      @table
    end

    def method_missing(name, *args)
      key = name.to_s
      return super if key.end_with?("=") || !args.empty?
      @table[key]
    end

    def respond_to_missing?(name, include_private = false)
      @table.key?(name.to_s) || super
    end
  end

  class MissingProperty < StandardError
    def initialize(names)
      super("Can't find property '#{names.join("', or '")}'")
    end
  end

  # What `if_p` returns when it did not yield: the alternatives run.
  class Otherwise
    def initialize(context)
      @context = context
    end

    def else
      yield
    end

    def else_if_p(*names, &block)
      @context.if_p(*names, &block)
    end
  end

  # What `if_p` returns when it yielded: the alternatives do not run.
  class Done
    def else; end

    def else_if_p(*_names)
      self
    end
  end

  class Context
    attr_reader :name, :index, :spec, :properties, :raw_properties

    def initialize(job_name, properties, spec)
      @raw_properties = properties
      @properties = Struct.wrap(properties)
      spec = { "name" => job_name, "index" => 0, "id" => "00000000-0000-0000-0000-000000000000",
               "deployment" => "bosh", "address" => spec["ip"] }.merge(spec)
      spec["job"] ||= { "name" => job_name }
      spec["properties"] = properties
      @spec = Struct.wrap(spec)
      @name = job_name
      @index = spec["index"]
    end

    def p(*args)
      names = Array(args[0])
      names.each do |name|
        value = Render.dig(@raw_properties, name)
        return value unless value.nil?
      end
      return args[1] if args.length == 2
      raise MissingProperty, names
    end

    def if_p(*names)
      values = names.map do |name|
        value = Render.dig(@raw_properties, name)
        return Otherwise.new(self) if value.nil?
        value
      end
      yield(*values)
      Done.new
    end

    def if_link(_name)
      Otherwise.new(self)
    end

    def link(name)
      raise "Can't find link '#{name}' (this renderer provides no links)"
    end

    def get_binding
      binding
    end
  end
end

# BOSH's renderer answers a bare string or number from JSON.dump as Ruby's
# inspect would; the CPIs' templates only dump hashes, but keep it the same.
class << JSON
  alias_method :dump_unwrapped, :dump

  def dump(*args)
    value = args[0]
    value.is_a?(String) || value.is_a?(Numeric) ? value.inspect : dump_unwrapped(*args)
  end
end

if $PROGRAM_NAME == __FILE__
  job_dir, manifest_path, out_dir = ARGV
  unless out_dir
    warn "usage: ruby #{$PROGRAM_NAME} JOB_DIR MANIFEST.yml OUT_DIR"
    exit 2
  end
  job = YAML.safe_load(File.read(File.join(job_dir, "spec")))
  manifest = YAML.safe_load(File.read(manifest_path)) || {}
  declared = job["properties"] || {}
  given = manifest["properties"] || {}
  Render.undeclared(given, declared).each do |name|
    warn "warning: property '#{name}' is not declared by job #{job["name"]}: BOSH drops it"
  end
  properties = Render.properties(declared, given)
  (job["templates"] || {}).each do |source, destination|
    path = File.join(job_dir, "templates", source)
    context = Render::Context.new(job["name"], properties, manifest["spec"] || {})
    begin
      erb = ERB.new(File.read(path), trim_mode: "-")
      erb.filename = path
      text = erb.result(context.get_binding)
    rescue StandardError => e
      line = e.backtrace.find { |l| l.start_with?(path) }&.split(":")&.at(1) || "unknown"
      warn "Error filling in template '#{source}' for #{job["name"]}/#{context.index} " \
           "(line #{line}: #{e.class}: #{e.message})"
      exit 1
    end
    target = File.join(out_dir, destination)
    FileUtils.mkdir_p(File.dirname(target))
    File.write(target, text)
    File.chmod(0o755, target) if destination.start_with?("bin/")
  end
end
