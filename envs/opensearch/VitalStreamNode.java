/*
 * Launcher of the local single-node OpenSearch used by VitalStream (scripts/vitalstream/searchnode.py).
 *
 * Why not org.opensearch.bootstrap.OpenSearch: the real entry point expects the tarball layout
 * (lib/, modules/<name>/plugin-descriptor.properties, a security policy per module, a keystore
 * tool), and Maven Central has only the jars. OpenSearch's own integration tests start nodes the
 * way this class does: a Node subclass whose plugins come from the classpath, which gives the
 * same REST API without the layout. What Bootstrap adds on top (security manager, bootstrap
 * checks for production limits, native memory locking) is not wanted for a loopback test node.
 *
 * Usage: java -cp '<jars>/*:<this class dir>' VitalStreamNode <home>
 * where <home>/config holds opensearch.yml and log4j2.properties (written by searchnode.py).
 * The process runs until SIGTERM/SIGINT, on which the node is closed cleanly (index files
 * flushed, so a later start over the same path.data sees every acknowledged document).
 *
 * Compiled with javac at start-up (or by `make jars`) against the jars of envs/opensearch/pom.xml.
 */

import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.apache.logging.log4j.core.LoggerContext;
import org.apache.logging.log4j.core.config.Configurator;
import org.opensearch.analysis.common.CommonAnalysisPlugin;
import org.opensearch.common.logging.LogConfigurator;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.index.mapper.MapperExtrasPlugin;
import org.opensearch.ingest.common.IngestCommonPlugin;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.plugins.Plugin;
import org.opensearch.script.mustache.MustachePlugin;
import org.opensearch.search.aggregations.matrix.MatrixAggregationPlugin;
import org.opensearch.transport.Netty4Plugin;

public final class VitalStreamNode {

    /** The tarball's modules that VitalStream uses, loaded from the classpath. */
    static final List<Class<? extends Plugin>> PLUGINS = List.of(
        Netty4Plugin.class, // HTTP + transport: without it there is no REST endpoint
        CommonAnalysisPlugin.class,
        IngestCommonPlugin.class, // the "set" processor ...
        MustachePlugin.class, // ... and the template engine that renders {{_ingest.timestamp}}
        MapperExtrasPlugin.class,
        MatrixAggregationPlugin.class
    );

    /** Node's plugin constructor is protected: a subclass is the public way in. */
    static final class ClasspathPluginNode extends Node {
        ClasspathPluginNode(Environment environment, Collection<Class<? extends Plugin>> plugins) {
            super(environment, plugins, true);
        }
    }

    private VitalStreamNode() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            System.err.println("usage: VitalStreamNode <home dir with config/opensearch.yml>");
            System.exit(2);
        }
        // As OpenSearch.main: catch log4j status errors raised before logging is configured.
        LogConfigurator.registerErrorListener();
        Path home = Paths.get(args[0]).toAbsolutePath().normalize();
        Settings initial = Settings.builder().put("path.home", home.toString()).build();
        Environment environment = InternalSettingsPreparer.prepareEnvironment(
            initial,
            Collections.emptyMap(),
            home.resolve("config"),
            () -> "vitalstream"
        );
        LogConfigurator.setNodeName(Node.NODE_NAME_SETTING.get(environment.settings()));
        LogConfigurator.configure(environment); // from here on System.out/err go to the log
        Logger logger = LogManager.getLogger(VitalStreamNode.class);
        // An Error (OOM, linkage) in any thread leaves a half-dead node: exit loudly instead.
        Thread.setDefaultUncaughtExceptionHandler((thread, error) -> {
            logger.error("uncaught exception in thread [" + thread.getName() + "]", error);
            if (error instanceof Error) {
                Runtime.getRuntime().halt(1);
            }
        });

        Node node;
        try {
            node = new ClasspathPluginNode(environment, PLUGINS);
        } catch (Throwable e) {
            logger.error("VitalStream node failed to initialise", e);
            stopLogging();
            Runtime.getRuntime().halt(1);
            return;
        }
        CountDownLatch closed = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
                if (node.awaitClose(20, TimeUnit.SECONDS) == false) {
                    logger.warn("node did not close within 20 s");
                }
            } catch (Exception e) {
                logger.error("failed to close the node", e);
            } finally {
                closed.countDown();
                stopLogging();
            }
        }, "vitalstream-node-shutdown"));
        try {
            node.start();
        } catch (Throwable e) {
            logger.error("VitalStream node failed to start", e);
            stopLogging();
            Runtime.getRuntime().halt(1);
        }
        logger.info("VitalStream node started (home {})", home);
        // The node's threads are daemons: keep the JVM alive until the shutdown hook ran.
        closed.await();
    }

    private static void stopLogging() {
        Configurator.shutdown((LoggerContext) LogManager.getContext(false));
    }
}
